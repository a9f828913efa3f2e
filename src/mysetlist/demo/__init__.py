"""The synthetic MySetlist world (`mysetlist demo`, and a fixture for tests and benchmarks).

- `world`: `build_world`, `reload_events`, `WorldSummary` (the public entry points)
- `spec`: `WorldSpec`, sizes and behavioural knobs
- `generation`: the whole world in memory, activity chunk by chunk
- `catalog`, `population`, `activity`: the generators (numpy, no database)
- `loaders`, `copy_writer`, `*.sql`: writing it with COPY; `vocabulary`: the word lists
- `migrations/`: the `demo_truth` schema (planted ground truth) and the bulk event load
"""
