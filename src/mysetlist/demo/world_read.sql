SELECT spec, history_start, as_of, id_secret FROM demo_truth.world
