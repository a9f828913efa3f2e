-- A new version of (name, locale); serialised per name by an advisory lock in the caller.
INSERT INTO notify.email_templates
  (name, locale, version, category, subject, html_body, text_body, variables, created_by)
SELECT %(name)s, %(locale)s, coalesce(max(version), 0) + 1, %(category)s, %(subject)s,
       %(html)s, %(text)s, %(variables)s, %(created_by)s
FROM notify.email_templates WHERE name = %(name)s AND locale = %(locale)s
RETURNING id, name, locale, version, created_at
