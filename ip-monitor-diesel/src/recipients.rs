//! [`DieselRecipients`]: the active staff, read with the application's own SQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::Nullable;
use ip_monitor_core::{InvalidRecipient, RecipientList, Recipients, RecipientsError, StoreError};

use crate::error::Error;
use crate::store::DieselStore;

/// The default query: the application's staff that are neither deleted nor locked.
pub const DEFAULT_QUERY: &str =
    "SELECT email, name FROM staff WHERE is_delete = false AND is_lock = false";

/// Reads the active recipients with a SQL query returning the columns `email` and `name`
/// (`name` may be NULL; write `NULL AS name` if there is none).
///
/// Bad rows — a NULL or unparsable address, CR/LF, invalid UTF-8 — are reported in
/// [`RecipientList::rejected`] and the other rows are still used.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ip_monitor_core::Recipients;
/// use ip_monitor_diesel::{DieselRecipients, DieselStore};
/// # let dir = tempfile::tempdir()?;
/// # let url = format!("sqlite://{}", dir.path().join("app.db").display());
/// let store = DieselStore::connect(&url).await?;
/// let staff = DieselRecipients::new(&store).query("SELECT address AS email, NULL AS name FROM ops_team");
/// # let _ = staff;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DieselRecipients {
    store: DieselStore,
    query: String,
}

#[cfg(feature = "sqlite")]
#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<diesel::sql_types::Binary>)]
    email: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Binary>)]
    name: Option<Vec<u8>>,
}

#[cfg(feature = "postgres")]
#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Nullable<diesel::sql_types::Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Text>)]
    name: Option<String>,
}

impl DieselRecipients {
    /// Recipients from the store's own database, with [`DEFAULT_QUERY`].
    pub fn new(store: &DieselStore) -> Self {
        DieselRecipients {
            store: store.clone(),
            query: DEFAULT_QUERY.to_owned(),
        }
    }

    /// Recipients from another database, which is only read: no `ip_monitor_*` tables are
    /// created in it.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let store = DieselStore::builder(url)
            .pool_size(2)
            .without_migrations()
            .connect()
            .await?;
        Ok(Self::new(&store))
    }

    /// Use this query instead of [`DEFAULT_QUERY`].
    pub fn query(mut self, sql: impl Into<String>) -> Self {
        self.query = sql.into();
        self
    }

    /// The query in use.
    pub fn sql(&self) -> &str {
        &self.query
    }
}

/// A row's `(email, name)` as raw bytes.
type RawRow = (Option<Vec<u8>>, Option<Vec<u8>>);

fn to_list(rows: Vec<RawRow>) -> RecipientList {
    let mut rejected = Vec::new();
    let mut good = Vec::with_capacity(rows.len());
    for (email, name) in rows {
        let Some(email) = email else {
            rejected.push(InvalidRecipient {
                row: "NULL".to_owned(),
                reason: "the email column is NULL".to_owned(),
            });
            continue;
        };
        let email = match String::from_utf8(email) {
            Ok(e) => e,
            Err(e) => {
                rejected.push(InvalidRecipient {
                    row: String::from_utf8_lossy(e.as_bytes())
                        .escape_debug()
                        .take(80)
                        .collect(),
                    reason: "the address is not valid UTF-8".to_owned(),
                });
                continue;
            }
        };
        // A name that is not UTF-8 is shown with replacement characters rather than
        // losing the recipient.
        let name = name.map(|n| String::from_utf8_lossy(&n).into_owned());
        good.push((email, name));
    }
    let mut list = RecipientList::from_rows(good);
    list.rejected.extend(rejected);
    list
}

#[async_trait]
impl Recipients for DieselRecipients {
    async fn active(&self) -> Result<RecipientList, RecipientsError> {
        let query = self.query.clone();
        let head = query.trim_start().to_ascii_lowercase();
        if !(head.starts_with("select") || head.starts_with("with")) {
            return Err(RecipientsError::new(
                "the recipients query must be a SELECT (or WITH … SELECT)",
            ));
        }
        // The query runs read-only: whatever it says, it cannot change the database.
        let rows = self
            .store
            .run(move |conn| {
                #[cfg(feature = "sqlite")]
                if let Some(conn) = conn.sqlite() {
                    use diesel::connection::SimpleConnection;
                    conn.batch_execute("PRAGMA query_only = ON")
                        .map_err(StoreError::backend)?;
                    let rows = diesel::sql_query(&query).load::<Row>(conn);
                    conn.batch_execute("PRAGMA query_only = OFF")
                        .map_err(StoreError::backend)?;
                    let rows = rows.map_err(StoreError::backend)?;
                    return Ok(rows
                        .into_iter()
                        .map(|r| (r.email, r.name))
                        .collect::<Vec<_>>());
                }
                #[cfg(feature = "postgres")]
                if let Some(conn) = conn.pg() {
                    let rows: Vec<TextRow> = conn
                        .build_transaction()
                        .read_only()
                        .run(|conn| diesel::sql_query(&query).load(conn))
                        .map_err(StoreError::backend)?;
                    return Ok(rows
                        .into_iter()
                        .map(|r| {
                            (
                                r.email.map(String::into_bytes),
                                r.name.map(String::into_bytes),
                            )
                        })
                        .collect::<Vec<_>>());
                }
                Err(StoreError::backend("no backend for this connection"))
            })
            .await
            .map_err(RecipientsError::new)?;
        Ok(to_list(rows))
    }
}
