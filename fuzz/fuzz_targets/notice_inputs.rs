//! URL templates and recipient rows: accepted ones are safe to put into a message (no
//! whitespace, quotes, angle brackets or control characters), rejected ones say why.
#![no_main]

use ip_monitor_core::{Recipient, UrlTemplate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mid = (0..=text.len() / 2).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    let (a, b) = text.split_at(mid);
    if let Ok(t) = UrlTemplate::parse(text) {
        for ip in ["81.2.69.160", "2001:db8::1"] {
            let url = t.render(ip.parse().unwrap());
            assert!(url.starts_with("http://") || url.starts_with("https://"));
            assert!(!url.chars().any(|c| c.is_whitespace() || c.is_control() || "\"<>".contains(c)), "{url:?}");
        }
    }
    match Recipient::new(a, Some(b)) {
        Ok(r) => {
            assert!(!r.email().chars().any(|c| c.is_control() || c.is_whitespace()));
            assert!(r.name().is_none_or(|n| !n.chars().any(char::is_control)));
        }
        Err(e) => assert!(!e.reason.is_empty()),
    }
});
