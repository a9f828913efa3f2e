"""Provider webhooks (SendGrid, SES over SNS): verified, read into one event shape and applied
once."""
