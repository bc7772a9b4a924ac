//! Slack incoming webhook: Block Kit with a button.

use serde_json::json;

use super::{ChatRequest, Message};

pub(super) fn requests(m: &Message<'_>) -> Vec<ChatRequest> {
    let text = format!("*{}*\n{}", escape(&m.title), escape(&m.intro));
    vec![m.plain(json!({
        "text": format!("{}: {}", m.title, m.button),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "actions", "elements": [{
                "type": "button",
                "text": { "type": "plain_text", "text": m.button },
                "url": m.url,
                "style": "primary",
            }]},
        ],
    }))]
}

/// Slack's mrkdwn control characters.
fn escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
