//! `[store]` and `[recipients]`: where the state lives, and who is told.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct StoreConfig {
    pub(super) url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RecipientsConfig {
    query: Option<String>,
    database_url: Option<String>,
    #[serde(rename = "static")]
    static_list: Option<Vec<String>>,
}

/// Who is told.
#[derive(Debug, Clone)]
pub enum RecipientsSetting {
    /// A fixed list (`[recipients] static = [...]`; empty: nobody).
    Static(Vec<String>),
    /// A SQL query on the store's database or another.
    Query {
        /// The query.
        sql: String,
        /// Another database, if not the store's.
        database_url: Option<String>,
    },
}

impl RecipientsSetting {
    /// `[recipients]`: a static list when `static` is set, else the query (the default one
    /// when the file has no `[recipients]`; nobody with no file at all).
    pub(super) fn build(config: Option<RecipientsConfig>, from_file: bool) -> Self {
        match config {
            None if !from_file => RecipientsSetting::Static(Vec::new()),
            None => RecipientsSetting::Query {
                sql: ip_monitor_diesel::DEFAULT_QUERY.to_owned(),
                database_url: None,
            },
            Some(r) => match r.static_list {
                Some(list) => RecipientsSetting::Static(list),
                None => RecipientsSetting::Query {
                    sql: r
                        .query
                        .unwrap_or_else(|| ip_monitor_diesel::DEFAULT_QUERY.to_owned()),
                    database_url: r.database_url,
                },
            },
        }
    }
}
