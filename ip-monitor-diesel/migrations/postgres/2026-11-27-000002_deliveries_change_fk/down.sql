ALTER TABLE ip_monitor_deliveries ADD CONSTRAINT ip_monitor_deliveries_change_id_fkey
    FOREIGN KEY (change_id) REFERENCES ip_monitor_changes (id);
