DROP TABLE saas_hosts;
