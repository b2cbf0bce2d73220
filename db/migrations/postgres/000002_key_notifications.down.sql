DROP TABLE saas_unmetered_calls;
DROP TABLE saas_event_deliveries;
DROP TABLE saas_key_events;
