"""The wire formats events arrive in: our own endpoint (`own`), Segment's (`segment`) and
PostHog's (`posthog`), each read into the one stored shape (`tracking.events`) by the one
identity rule (`tracking.identity_rule`), with the limits and checks they share
(`validation`)."""
