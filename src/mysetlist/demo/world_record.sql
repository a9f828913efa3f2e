-- The world just built: its spec, present and summary, and the secret its visitor ids use.
INSERT INTO demo_truth.world (seed, spec, history_start, as_of, summary, id_secret)
VALUES (%(seed)s, %(spec)s, %(history_start)s, %(as_of)s, %(summary)s, %(id_secret)s)
