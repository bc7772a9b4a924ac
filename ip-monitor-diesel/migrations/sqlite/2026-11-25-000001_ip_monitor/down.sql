DROP TABLE ip_monitor_control;
DROP TABLE ip_monitor_instances;
DROP TABLE ip_monitor_deliveries;
DROP TABLE ip_monitor_current;
DROP TABLE ip_monitor_changes;
