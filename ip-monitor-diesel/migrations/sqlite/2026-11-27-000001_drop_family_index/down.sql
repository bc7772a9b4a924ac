CREATE INDEX IF NOT EXISTS ip_monitor_deliveries_family ON ip_monitor_deliveries (family, state);
