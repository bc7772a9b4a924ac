//! Any trace body is either an address from its `ip=` line or an error; never a panic.
#![no_main]

use ip_monitor_core::Family;
use ip_monitor_core::source::parse_cloudflare_trace;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (family, body) = match data.split_first() {
        Some((f, rest)) => (if f % 2 == 0 { Family::V4 } else { Family::V6 }, rest),
        None => return,
    };
    if let Ok(addr) = parse_cloudflare_trace(body, family) {
        assert_eq!(Family::of(&addr), family);
        let text = std::str::from_utf8(body).expect("accepted bodies are UTF-8");
        assert!(text.lines().any(|l| l.trim().strip_prefix("ip=").is_some_and(|v| v.trim().parse() == Ok(addr))));
    }
});
