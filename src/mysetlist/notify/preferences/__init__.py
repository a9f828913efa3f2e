"""Notification preferences: the category x channel matrix, digests, quiet hours and mute; one-
click unsubscribe."""
