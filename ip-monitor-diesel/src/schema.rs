//! The tables, all prefixed `ip_monitor_` so they sit beside the application's own.

diesel::table! {
    ip_monitor_changes (id) {
        id -> BigInt,
        family -> Text,
        address -> Text,
        previous -> Nullable<Text>,
        url -> Text,
        kind -> Text,
        detected_at_ms -> BigInt,
        deliveries -> BigInt,
    }
}

diesel::table! {
    ip_monitor_current (family) {
        family -> Text,
        address -> Text,
        since_ms -> BigInt,
        change_id -> BigInt,
    }
}

diesel::table! {
    ip_monitor_deliveries (id) {
        id -> BigInt,
        change_id -> BigInt,
        family -> Text,
        change_kind -> Text,
        address -> Text,
        url -> Text,
        email -> Text,
        email_key -> Text,
        name -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        created_at_ms -> BigInt,
        next_attempt_at_ms -> BigInt,
        last_error -> Nullable<Text>,
        sent_at_ms -> Nullable<BigInt>,
        fence -> Nullable<BigInt>,
        recipient_kind -> Text,
    }
}

diesel::table! {
    ip_monitor_instances (id) {
        id -> Text,
        heartbeat_at_ms -> BigInt,
        status -> Text,
    }
}

diesel::table! {
    ip_monitor_control (id) {
        id -> Integer,
        desired_state -> Text,
        lease_holder -> Nullable<Text>,
        lease_host -> Nullable<Text>,
        lease_pid -> Nullable<BigInt>,
        lease_fence -> BigInt,
        lease_acquired_at_ms -> BigInt,
        lease_expires_at_ms -> BigInt,
    }
}
