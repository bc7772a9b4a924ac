-- Superseding finds its rows through the due index (state first): this one only slowed
-- every write of a delivery. Databases made before this migration have it; the first
-- migration no longer creates it.
DROP INDEX IF EXISTS ip_monitor_deliveries_family;
