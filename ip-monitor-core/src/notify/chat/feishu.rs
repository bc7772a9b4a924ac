//! Feishu / Lark custom bot: an interactive card with a button; signed (`timestamp`,
//! `sign`: base64 of HMAC-SHA256 keyed with "timestamp\nsecret" over nothing) when a secret
//! is set.

use base64::Engine as _;
use serde_json::json;

use super::{ChatRequest, Message, hmac_sha256};

pub(super) fn requests(m: &Message<'_>) -> Vec<ChatRequest> {
    let mut body = json!({
        "msg_type": "interactive",
        "card": {
            "header": { "title": { "tag": "plain_text", "content": m.title } },
            "elements": [
                { "tag": "div", "text": { "tag": "plain_text", "content": m.intro } },
                { "tag": "action", "actions": [{
                    "tag": "button",
                    "type": "primary",
                    "text": { "tag": "plain_text", "content": m.button },
                    "url": m.url,
                }]},
            ],
        },
    });
    if let Some(secret) = m.secret {
        let secs = m.secs;
        let sign = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(format!("{secs}\n{secret}").as_bytes(), b""));
        body["timestamp"] = json!(secs.to_string());
        body["sign"] = json!(sign);
    }
    vec![m.plain(body)]
}

/// 9499, 11232 and 11233: rate limits.
pub(super) fn transient_code(code: i64) -> bool {
    matches!(code, 9499 | 11232 | 11233)
}
