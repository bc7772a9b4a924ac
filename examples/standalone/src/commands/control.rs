//! `start` and `stop`: the desired state every monitor on the store follows.

use ip_monitor_core::{DesiredState, StateStore};
use ip_monitor_standalone::config::Settings;

use super::{Outcome, store};

pub(crate) async fn set_desired(s: &Settings, state: DesiredState) -> Outcome {
    let store = store(s).await?;
    store.set_desired_state(state).await?;
    println!(
        "desired state: {} (running monitors follow within {})",
        state.as_str(),
        humantime::format_duration(s.monitor.control_poll)
    );
    Ok(())
}
