"""Machine learning on the warehouse: setlist prediction (and, later, engagement, churn and
recommendations). Offline evaluation commands live under `mysetlist ml`."""
