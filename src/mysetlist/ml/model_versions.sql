-- Registered versions (never their artifacts), newest first per model: of model %(name)s
-- (NULL: every model), only the active one when %(active_only)s, or the one version %(id)s.
SELECT id, name, version, trained_at, data_from, data_to, params, metrics, primary_metric,
       active, decision
FROM analytics.ml_models
WHERE (%(name)s::text IS NULL OR name = %(name)s::text)
  AND (%(id)s::bigint IS NULL OR id = %(id)s::bigint)
  AND (active OR NOT %(active_only)s::boolean)
ORDER BY name, version DESC
