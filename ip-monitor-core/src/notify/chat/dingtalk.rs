//! DingTalk custom robot: an action card with a button; signed (`timestamp`, `sign` in the
//! query: base64 of HMAC-SHA256 over "millis\nsecret") when a secret is set.

use base64::Engine as _;
use serde_json::json;

use super::{ChatRequest, Message, hmac_sha256};
use crate::notify::api::encode;

pub(super) fn requests(m: &Message<'_>) -> Vec<ChatRequest> {
    let mut target = m.target.to_owned();
    if let Some(secret) = m.secret {
        let millis = m.secs * 1000;
        let sign = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
            secret.as_bytes(),
            format!("{millis}\n{secret}").as_bytes(),
        ));
        let sep = if target.contains('?') { '&' } else { '?' };
        target = format!("{target}{sep}timestamp={millis}&sign={}", encode(&sign));
    }
    let body = json!({
        "msgtype": "actionCard",
        "actionCard": {
            "title": m.title,
            "text": format!("### {}\n\n{}", m.title, m.intro),
            "btnOrientation": "0",
            "singleTitle": m.button,
            "singleURL": m.url,
        },
    });
    vec![ChatRequest {
        url: target,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }]
}

/// -1 busy, 130101 sending too fast, 660026 too many messages.
pub(super) fn transient_code(code: i64) -> bool {
    matches!(code, -1 | 130101 | 660026)
}
