//! Any configuration text loads or gives an error naming the file; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = ip_monitor_standalone::config::Settings::parse("fuzz.toml", text) {
        assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
    }
});
