SELECT demo_truth.finish_event_bulk_load()
