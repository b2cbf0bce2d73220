-- The request log is written at the rate of API calls, and each index costs
-- every insert. No query reads this one: SQLite plans the admin log query
-- (whose filters are all optional) as a scan of the primary key, newest
-- first, which is also what stops it after one page.
DROP INDEX IF EXISTS saas_api_request_logs_org_idx;
