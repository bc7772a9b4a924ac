//! `[[hooks]]`: programs run once per change, through the outbox like a channel.

use std::time::Duration;

use ip_monitor_core::notify::HookNotifier;
use serde::Deserialize;

use super::KeyError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct HookConfig {
    /// The program and its arguments; `{ip}`, `{previous}`, `{url}`, `{family}` replaced.
    command: Option<Vec<String>>,
    name: Option<String>,
    #[serde(with = "humantime_serde")]
    timeout: Option<Duration>,
    /// Whether `test --force` runs it (default true, with `IP_MONITOR_TEST=1`).
    on_test: Option<bool>,
}

impl HookConfig {
    /// The hook's channel name and notifier; entry `i` of the list, whose name must not be
    /// one of `taken` (the chats' and the hooks' before it).
    pub(super) fn build(
        self,
        i: usize,
        taken: &[String],
    ) -> Result<(String, HookNotifier), KeyError> {
        let key = |name: &str| format!("hooks[{i}].{name}");
        let argv = self.command.ok_or_else(|| {
            KeyError::new(
                key("command"),
                "required: the program and its arguments, e.g. [\"/usr/local/bin/on-ip-change\", \"{ip}\"]",
            )
        })?;
        let program = argv.first().cloned().unwrap_or_default();
        let name = self.name.unwrap_or_else(|| {
            let base = program.rsplit('/').next().unwrap_or(&program);
            format!("hook-{base}")
        });
        let hook = HookNotifier::new(name.clone(), argv)
            .map_err(|e| KeyError::new(key("command"), e.reason()))?;
        super::channels::check_name(&name, taken)
            .map_err(|message| KeyError::new(key("name"), message))?;
        let timeout = self.timeout.unwrap_or(Duration::from_secs(30));
        if timeout.is_zero() || timeout > Duration::from_secs(3600) {
            return Err(KeyError::new(key("timeout"), "must be between 1s and 1h"));
        }
        Ok((
            name,
            hook.timeout(timeout).on_test(self.on_test.unwrap_or(true)),
        ))
    }
}
