CREATE INDEX saas_api_request_logs_org_idx ON saas_api_request_logs (org_id, id);
