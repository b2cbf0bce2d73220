DROP TABLE saas_module_roles;
