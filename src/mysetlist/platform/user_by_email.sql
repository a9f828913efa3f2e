SELECT id FROM app.users WHERE email_hash = %s
