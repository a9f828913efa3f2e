-- Every user request switches to an API role (core/db.py `as_role`), so the role that runs
-- the migrations and the service must be able to SET ROLE to each of them. 0001 grants that
-- to itself where it can and only logs a NOTICE where it cannot: on a managed database (the
-- migrating role is no superuser and has no ADMIN option on these roles) the migrations
-- then succeeded and every user request failed with "permission denied to set role".
-- Refuse to migrate instead, naming the one statement an administrator must run.
DO $$
DECLARE api_role text;
BEGIN
  FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
    BEGIN
      EXECUTE format('SET LOCAL ROLE %I', api_role);
      RESET ROLE;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE EXCEPTION
        'role % cannot switch to the API role %: as an administrator run GRANT anon, authenticated, service_role TO %;',
        current_user, api_role, quote_ident(current_user::text);
    END;
  END LOOP;
END
$$;
