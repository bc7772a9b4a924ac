//! Any body is either a valid address of the asked family or an error; never a panic.
#![no_main]

use ip_monitor_core::Family;
use ip_monitor_core::source::{MAX_ANSWER_BYTES, parse_plain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (family, body) = match data.split_first() {
        Some((f, rest)) => (if f % 2 == 0 { Family::V4 } else { Family::V6 }, rest),
        None => return,
    };
    if let Ok(addr) = parse_plain(body, family) {
        assert_eq!(Family::of(&addr), family);
        assert!(body.len() <= MAX_ANSWER_BYTES);
        let text = std::str::from_utf8(body).expect("accepted bodies are UTF-8");
        assert_eq!(text.trim().parse::<std::net::IpAddr>().ok(), Some(addr));
    }
});
