DROP TABLE top_ups;
DROP TABLE charges;
DROP TABLE accounts;
