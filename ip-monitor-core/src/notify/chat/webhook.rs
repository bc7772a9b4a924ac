//! A plain JSON webhook: `event`, `address`, `previous`, `family`, `url`, `detected_at`,
//! `test`. When a secret is set it is signed: `X-IP-Monitor-Timestamp: <seconds since 1970>`
//! and `X-IP-Monitor-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`. Covering
//! the timestamp lets a receiver reject replays: it recomputes the signature and refuses a
//! timestamp more than a few minutes from its clock (and, to be strict, one it has seen).

use serde_json::json;

use super::{ChatRequest, Message, hex, hmac_sha256};
use crate::web::report::rfc3339;

pub(super) fn requests(m: &Message<'_>) -> Vec<ChatRequest> {
    let notice = m.notice;
    let body = json!({
        "event": if notice.test { "test" } else { "address_changed" },
        "address": notice.address,
        "previous": notice.previous,
        "family": notice.family.as_str(),
        "url": m.url,
        "detected_at": rfc3339(notice.detected_at),
        "test": notice.test,
    })
    .to_string()
    .into_bytes();
    let headers = match m.secret {
        Some(secret) => {
            let timestamp = m.secs.to_string();
            let signed = [timestamp.as_bytes(), b".", &body].concat();
            vec![
                (
                    "X-IP-Monitor-Signature",
                    format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), &signed))),
                ),
                ("X-IP-Monitor-Timestamp", timestamp),
            ]
        }
        None => Vec::new(),
    };
    vec![ChatRequest {
        url: m.target.to_owned(),
        headers,
        body,
    }]
}
