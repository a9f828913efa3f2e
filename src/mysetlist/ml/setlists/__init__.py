"""Setlist prediction: rank an artist's songs by the chance each is played at an upcoming show.

- `setlist_history`: past setlists as plain data, and the CSV format the evaluation reads;
- `signals`: the per-song signals computed from earlier shows only (one forward pass);
- `ranker`: a logistic ranker fitted per artist, shrunk towards a prior for short histories;
- `predictor`: the model the product serves (ranked songs, probabilities, length, reasons);
- `baselines`, `offline_evaluation`: the rolling-origin protocol and its metrics.
"""
