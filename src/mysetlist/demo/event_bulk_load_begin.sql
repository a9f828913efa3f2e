SELECT demo_truth.begin_event_bulk_load(%s::date, %s::date)
