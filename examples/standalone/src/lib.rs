//! The `ip-monitor` binary's configuration, as a library so it can be tested and fuzzed on
//! its own. The binary itself is `src/main.rs`.

pub mod config;
pub mod logfile;
pub mod server;
