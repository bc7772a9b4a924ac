//! A plain JSON webhook: `event`, `address`, `previous`, `family`, `url`, `detected_at`,
//! `test`, signed with `X-IP-Monitor-Signature: sha256=<hex HMAC-SHA256 of the body>` when
//! a secret is set.

use serde_json::json;

use super::{ChatRequest, Message, hex, hmac};
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
        Some(secret) => vec![(
            "X-IP-Monitor-Signature",
            format!("sha256={}", hex(&hmac(secret.as_bytes(), &body))),
        )],
        None => Vec::new(),
    };
    vec![ChatRequest {
        url: m.target.to_owned(),
        headers,
        body,
    }]
}
