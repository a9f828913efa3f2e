"""The in-app inbox: the in-app channel, the inbox API and its live stream (Server-Sent
Events)."""
