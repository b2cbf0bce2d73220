DROP TABLE saas_task_runs;
