//! WeCom (WeChat Work) group bot: a markdown message with the link, then the QR code as an
//! image message (base64 with its MD5).

use base64::Engine as _;
use md5::Digest as _;
use serde_json::json;

use super::{ChatRequest, Message, hex};

pub(super) fn requests(m: &Message<'_>) -> Vec<ChatRequest> {
    let markdown = format!("**{}**\n{}\n[{}]({})", m.title, m.intro, m.button, m.url);
    let mut out = vec![m.plain(json!({
        "msgtype": "markdown",
        "markdown": { "content": markdown },
    }))];
    if let Some(png) = &m.notice.qr_png {
        out.push(m.plain(json!({
            "msgtype": "image",
            "image": {
                "base64": base64::engine::general_purpose::STANDARD.encode(png),
                "md5": hex(&md5::Md5::digest(png)),
            },
        })));
    }
    out
}

/// -1 system busy, 45009 too many calls, 45033 too many concurrent calls.
pub(super) fn transient_code(code: i64) -> bool {
    matches!(code, -1 | 45009 | 45033)
}
