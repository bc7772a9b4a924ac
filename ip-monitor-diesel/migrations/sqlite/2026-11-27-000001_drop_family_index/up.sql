-- Superseding finds its rows through the due index (state first): this one only slowed
-- every write of a delivery.
DROP INDEX IF EXISTS ip_monitor_deliveries_family;
