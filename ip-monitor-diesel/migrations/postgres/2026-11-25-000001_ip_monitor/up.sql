CREATE TABLE ip_monitor_changes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    family TEXT NOT NULL,
    address TEXT NOT NULL,
    previous TEXT,
    url TEXT NOT NULL,
    kind TEXT NOT NULL,
    detected_at_ms BIGINT NOT NULL,
    deliveries BIGINT NOT NULL
);

CREATE TABLE ip_monitor_current (
    family TEXT PRIMARY KEY NOT NULL,
    address TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    change_id BIGINT NOT NULL REFERENCES ip_monitor_changes (id)
);

CREATE TABLE ip_monitor_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    change_id BIGINT NOT NULL REFERENCES ip_monitor_changes (id),
    family TEXT NOT NULL,
    change_kind TEXT NOT NULL,
    address TEXT NOT NULL,
    url TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    name TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at_ms BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    last_error TEXT,
    sent_at_ms BIGINT,
    fence BIGINT,
    UNIQUE (change_id, email_key)
);
CREATE INDEX ip_monitor_deliveries_due ON ip_monitor_deliveries (state, next_attempt_at_ms, id);

CREATE TABLE ip_monitor_instances (
    id TEXT PRIMARY KEY NOT NULL,
    heartbeat_at_ms BIGINT NOT NULL,
    status TEXT NOT NULL
);

CREATE TABLE ip_monitor_control (
    id INTEGER PRIMARY KEY NOT NULL,
    desired_state TEXT NOT NULL,
    lease_holder TEXT,
    lease_host TEXT,
    lease_pid BIGINT,
    lease_fence BIGINT NOT NULL,
    lease_acquired_at_ms BIGINT NOT NULL,
    lease_expires_at_ms BIGINT NOT NULL
);
INSERT INTO ip_monitor_control (id, desired_state, lease_fence, lease_acquired_at_ms, lease_expires_at_ms)
VALUES (1, 'running', 0, 0, 0);
