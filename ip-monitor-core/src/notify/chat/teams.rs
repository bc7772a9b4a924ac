//! Microsoft Teams workflow webhook: an Adaptive Card with an Open URL action.

use serde_json::json;

use super::{ChatRequest, Message};

pub(super) fn requests(m: &Message<'_>) -> Vec<ChatRequest> {
    vec![m.plain(json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    { "type": "TextBlock", "text": m.title, "weight": "Bolder", "size": "Medium", "wrap": true },
                    { "type": "TextBlock", "text": m.intro, "wrap": true },
                ],
                "actions": [{ "type": "Action.OpenUrl", "title": m.button, "url": m.url }],
            },
        }],
    }))]
}
