"""Notifications: templates, preferences, smart delivery over email (SMTP, SendGrid, Amazon
SES), web push and in-app, with tracking, unsubscribe and analytics."""
