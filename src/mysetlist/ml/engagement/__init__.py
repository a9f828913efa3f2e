"""Engagement forecasting: each user's mean daily engagement score over the next 7 days."""
