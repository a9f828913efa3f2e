"""Artist and show recommendations, similar fans: models, offline evaluation, serving."""
