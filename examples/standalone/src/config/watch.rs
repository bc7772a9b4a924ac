//! `[watch]`: what wakes a full check besides the timers.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct WatchConfig {
    /// Check at once when the kernel reports an address or default-route change (default on
    /// where supported: Linux).
    interfaces: Option<bool>,
    /// Check at once when the router of a NAT-PMP or PCP source announces a change (default
    /// on).
    routers: Option<bool>,
}

impl WatchConfig {
    /// Whether interface events are asked for.
    pub(super) fn interfaces(&self) -> bool {
        self.interfaces.unwrap_or(true)
    }

    /// Whether routers' announcements are listened for.
    pub(super) fn routers(&self) -> bool {
        self.routers.unwrap_or(true)
    }
}
