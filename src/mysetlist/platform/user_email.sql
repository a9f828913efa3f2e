SELECT email_encrypted FROM app.users WHERE id = %s
