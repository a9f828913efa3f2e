-- Recommendations and similar fans (ml) read a fan's history (follows, votes, events: the one
-- interaction definition, recommendations/interactions.sql) under the caller's own role. A
-- fan reads their own rows, a service token bypasses RLS; an operator (app_metadata.admin,
-- still the `authenticated` role) asks about any fan, so operators may read follows and votes
-- as they already read the fan's profile (app.users) and events (analytics.user_events).
-- Read only: writes stay the fan's own.
CREATE POLICY "Operators can view follows" ON app.follows FOR SELECT USING (auth.is_admin());
CREATE POLICY "Operators can view votes" ON app.setlist_votes FOR SELECT
  USING (auth.is_admin());
