-- The newest saved version of a template in the locale, else in English.
SELECT name, locale, version, category, subject, html_body, text_body, variables
FROM notify.email_templates
WHERE name = %(name)s AND locale IN (%(locale)s, 'en')
ORDER BY (locale = %(locale)s) DESC, version DESC
LIMIT 1
