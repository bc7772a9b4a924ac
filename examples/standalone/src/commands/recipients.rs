//! `recipients [--json]`: the active recipients, and the rows skipped.

use ip_monitor_core::{RecipientList, Recipients};
use ip_monitor_standalone::config::{RecipientsSetting, Settings};
use serde_json::json;

use super::{
    Outcome, missing_store_file, print_json, recipients, recipients_elsewhere, store,
    warn_if_nobody,
};

pub(crate) async fn recipients_cmd(s: &Settings, as_json: bool) -> Outcome {
    let reads_store = matches!(
        &s.recipients,
        RecipientsSetting::Query {
            database_url: None,
            ..
        }
    );
    let list = if !reads_store {
        // A fixed list, or another database: the store is not needed.
        recipients_elsewhere(s).await?.active().await?
    } else if let Some(path) = missing_store_file(s) {
        // Staff come from the store's database, which does not exist yet: nobody, and no
        // empty database left behind.
        tracing::warn!("no database at {path} yet, so no staff table");
        RecipientList::default()
    } else {
        let store = store(s).await?;
        recipients(s, &store).await?.active().await?
    };
    if as_json {
        print_json(&json!({
            "active": list.valid.iter().map(|r| json!({"email": r.email(), "name": r.name()})).collect::<Vec<_>>(),
            "skipped": list.rejected.iter().map(|r| json!({"row": r.row, "reason": r.reason})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    warn_if_nobody(&list);
    for r in &list.valid {
        println!("{r}");
    }
    for r in &list.rejected {
        println!("skipped: {r}");
    }
    Ok(())
}
