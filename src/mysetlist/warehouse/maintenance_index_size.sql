SELECT pg_relation_size(format('analytics.%%I', %(index)s::text)::regclass) AS bytes
