"""Churn prediction: who goes quiet in the N days after a cut-off."""
