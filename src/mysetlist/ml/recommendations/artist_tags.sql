-- Content features of artists: their genres (weight 1 each).
SELECT a.id::text AS item_id, g AS tag, 1.0::float8 AS weight
FROM app.artists a, unnest(a.genres) g
