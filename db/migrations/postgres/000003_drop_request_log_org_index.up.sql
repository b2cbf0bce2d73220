-- Kept on PostgreSQL: its planner uses the index for an org filter, and the
-- request log is written there with COPY. This version exists so that both
-- engines share one migration history.
SELECT 1;
