//! `[store]` and `[recipients]`: where the state lives, and who is told. A database URL
//! that holds a password may come from the file (`url`), an environment variable
//! (`url_env`) or a file of its own (`url_file`), so the configuration need not hold it.

use std::path::PathBuf;

use serde::Deserialize;

use super::KeyError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct StoreConfig {
    url: Option<String>,
    url_env: Option<String>,
    url_file: Option<PathBuf>,
}

impl StoreConfig {
    /// The store's URL, if set, and whether a password sits in the configuration itself.
    pub(super) fn url(self) -> Result<Option<(String, bool)>, KeyError> {
        database_url("store", "url", self.url, self.url_env, self.url_file)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RecipientsConfig {
    query: Option<String>,
    database_url: Option<String>,
    database_url_env: Option<String>,
    database_url_file: Option<PathBuf>,
    #[serde(rename = "static")]
    static_list: Option<Vec<String>>,
}

/// A database URL from `SECTION.KEY`, `SECTION.KEY_env` or `SECTION.KEY_file` (one of
/// them): the URL, and whether it was written in the configuration with a password.
fn database_url(
    section: &str,
    key: &str,
    inline: Option<String>,
    env: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<(String, bool)>, KeyError> {
    let name = |suffix: &str| format!("{section}.{key}{suffix}");
    match (inline, env, file) {
        (None, None, None) => Ok(None),
        (Some(url), None, None) => {
            let inline_password = holds_password(&url);
            Ok(Some((url, inline_password)))
        }
        (None, Some(var), None) => match std::env::var(&var) {
            Ok(url) if !url.trim().is_empty() => Ok(Some((url.trim().to_owned(), false))),
            Ok(_) => Err(KeyError::new(name("_env"), format!("${var} is empty"))),
            Err(_) => Err(KeyError::new(
                name("_env"),
                format!("the environment variable {var} is not set"),
            )),
        },
        (None, None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(url) if !url.trim().is_empty() => Ok(Some((url.trim().to_owned(), false))),
            Ok(_) => Err(KeyError::new(
                name("_file"),
                format!("{} is empty", path.display()),
            )),
            Err(e) => Err(KeyError::new(
                name("_file"),
                format!("cannot read {}: {e}", path.display()),
            )),
        },
        _ => Err(KeyError::new(
            name(""),
            format!(
                "set one of {}, {} and {}",
                name(""),
                name("_env"),
                name("_file")
            ),
        )),
    }
}

/// Whether a database URL carries a password (in its userinfo or its query).
fn holds_password(url: &str) -> bool {
    ip_monitor_diesel::redact(url) != url
}

/// Who is told. Its `Debug` masks a database password.
#[derive(Clone)]
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

impl std::fmt::Debug for RecipientsSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecipientsSetting::Static(list) => f.debug_tuple("Static").field(list).finish(),
            RecipientsSetting::Query { sql, database_url } => f
                .debug_struct("Query")
                .field("sql", sql)
                .field(
                    "database_url",
                    &database_url.as_deref().map(ip_monitor_diesel::redact),
                )
                .finish(),
        }
    }
}

impl RecipientsSetting {
    /// `[recipients]`: a static list when `static` is set, else the query (the default one
    /// when the file has no `[recipients]`; nobody with no file at all). The flag says
    /// whether a password sits in the configuration itself.
    pub(super) fn build(
        config: Option<RecipientsConfig>,
        from_file: bool,
    ) -> Result<(Self, bool), KeyError> {
        Ok(match config {
            None if !from_file => (RecipientsSetting::Static(Vec::new()), false),
            None => (
                RecipientsSetting::Query {
                    sql: ip_monitor_diesel::DEFAULT_QUERY.to_owned(),
                    database_url: None,
                },
                false,
            ),
            Some(r) => {
                let url = database_url(
                    "recipients",
                    "database_url",
                    r.database_url,
                    r.database_url_env,
                    r.database_url_file,
                )?;
                match r.static_list {
                    Some(list) => (RecipientsSetting::Static(list), false),
                    None => {
                        let inline = url.as_ref().is_some_and(|(_, inline)| *inline);
                        let sql = r
                            .query
                            .unwrap_or_else(|| ip_monitor_diesel::DEFAULT_QUERY.to_owned());
                        let database_url = url.map(|(url, _)| url);
                        (RecipientsSetting::Query { sql, database_url }, inline)
                    }
                }
            }
        })
    }
}
