SELECT analytics.ensure_event_partitions(%s::date, %s::date)
