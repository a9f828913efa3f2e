-- The model blended with the crowd's votes as of %(as_of)s, most likely first.
SELECT b.song_id, b.probability, b.model_probability, b.crowd_share, b.voters, so.title
FROM analytics.setlist_blend(%(show_id)s, %(as_of)s) b
JOIN app.songs so ON so.id = b.song_id
ORDER BY b.probability DESC, b.song_id
