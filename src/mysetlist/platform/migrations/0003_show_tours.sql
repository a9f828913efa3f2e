-- The tour a show belongs to (setlists stay close within a tour); NULL when unknown.
ALTER TABLE app.shows ADD COLUMN IF NOT EXISTS tour text;
