UPDATE ip_monitor_deliveries
   SET email = 'dns-' || email || '@channel.invalid',
       name = 'dns-' || email,
       email_key = lower('dns-' || email || '@channel.invalid')
 WHERE recipient_kind = 'dns_record';
UPDATE ip_monitor_deliveries
   SET email = email || '@channel.invalid',
       email_key = lower(email || '@channel.invalid')
 WHERE recipient_kind = 'channel';
ALTER TABLE ip_monitor_deliveries DROP COLUMN recipient_kind;
