-- Read-only ClickHouse access for one tenant's analysts and dashboards.
--
-- Render it with `sentra migrate --tenant-access TENANT` (which validates the tenant id and fills in the
-- database, tenant and service user), review it, and run it as an administrator on a real ClickHouse
-- server (access management is not part of the embedded chDB engine used in tests).
--
-- Row policies are the boundary: a tenant role sees only rows whose `tenant` column is its own, in every
-- table and in the views built on them (plain views run with the reader's rights). Once a table has any
-- row policy, ClickHouse hides all rows from users without one, so the Sentra service user (the writer)
-- gets an unrestricted policy below; repeating it for every tenant is harmless.

CREATE ROLE IF NOT EXISTS `sentra_tenant_{tenant}`;

GRANT SELECT ON {db}.events TO `sentra_tenant_{tenant}`;
GRANT SELECT ON {db}.signals TO `sentra_tenant_{tenant}`;
GRANT SELECT ON {db}.quarantine TO `sentra_tenant_{tenant}`;
GRANT SELECT ON {db}.events_per_minute_state TO `sentra_tenant_{tenant}`;
GRANT SELECT ON {db}.events_per_minute TO `sentra_tenant_{tenant}`;
GRANT SELECT ON {db}.signals_per_day_state TO `sentra_tenant_{tenant}`;
GRANT SELECT ON {db}.signals_per_day TO `sentra_tenant_{tenant}`;

CREATE ROW POLICY IF NOT EXISTS `sentra_tenant_{tenant}` ON {db}.events, {db}.signals, {db}.quarantine, {db}.events_per_minute_state, {db}.signals_per_day_state
    AS PERMISSIVE FOR SELECT USING tenant = '{tenant}' TO `sentra_tenant_{tenant}`;

CREATE ROW POLICY IF NOT EXISTS `sentra_service` ON {db}.events, {db}.signals, {db}.quarantine, {db}.events_per_minute_state, {db}.signals_per_day_state
    AS PERMISSIVE FOR SELECT USING 1 TO `{service_user}`;

-- Then give people or dashboards a user with this role, e.g.:
--   CREATE USER `acme_grafana` IDENTIFIED WITH sha256_password BY '...' DEFAULT ROLE `sentra_tenant_{tenant}`;
--   GRANT `sentra_tenant_{tenant}` TO `acme_grafana`;
