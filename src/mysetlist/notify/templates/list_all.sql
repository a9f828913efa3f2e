SELECT DISTINCT ON (name, locale) name, locale, version, category, variables, created_at
FROM notify.email_templates
ORDER BY name, locale, version DESC
