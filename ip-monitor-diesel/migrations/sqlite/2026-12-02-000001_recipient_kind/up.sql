-- A delivery's recipient says what it is: a staff member ('staff'), a chat channel
-- ('channel') or a DNS record ('dns_record'). Earlier versions stored a channel as the
-- address NAME@channel.invalid and a DNS record as the channel dns-NAME; those rows are
-- moved to their kind here, keyed as the store now keys them (KIND:name in lower case).
-- SET expressions read the row as it was before the update.
ALTER TABLE ip_monitor_deliveries ADD COLUMN recipient_kind TEXT NOT NULL DEFAULT 'staff';
UPDATE ip_monitor_deliveries
   SET recipient_kind = 'dns_record',
       email = substr(email, 5, length(email) - 20),
       name = substr(email, 5, length(email) - 20),
       email_key = 'dns_record:' || lower(substr(email, 5, length(email) - 20))
 WHERE email LIKE 'dns-%@channel.invalid';
UPDATE ip_monitor_deliveries
   SET recipient_kind = 'channel',
       email = substr(email, 1, length(email) - 16),
       name = substr(email, 1, length(email) - 16),
       email_key = 'channel:' || lower(substr(email, 1, length(email) - 16))
 WHERE recipient_kind = 'staff' AND email LIKE '%@channel.invalid';
