"""The ML feature store: per-user, per-artist and per-(user, artist) features as of each day."""
