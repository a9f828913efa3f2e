"""Web push: the push channel, the checks on the endpoints browsers give us, and the
subscription API."""
