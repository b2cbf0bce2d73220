-- PostgreSQL partitions the request log by day (000007); SQLite keeps one
-- table, pruned by the primary key. This version keeps one history.
SELECT 1;
