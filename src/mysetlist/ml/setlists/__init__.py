"""Setlist prediction: rank an artist's songs by the chance each is played at an upcoming show.

- `setlist_history`: past setlists as plain data, and the CSV format the evaluation reads;
- `signals`: the per-song signals and the artist's style, from earlier shows only (one
  forward pass);
- `ranker`: one logistic ranker learned across artists, a per-artist correction shrunk by an
  empirical-Bayes prior, and the set size that maximises the expected F1;
- `training`: fit the ranker on every played show and register it (`ml train`, nightly);
- `predictor`: the model the product serves (ranked songs, probabilities, length, reasons);
- `offline_evaluation`: the rolling-origin protocol, four baselines, F1 at each predictor's
  own length, and paired bootstrap intervals.
"""
