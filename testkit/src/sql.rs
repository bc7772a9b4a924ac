use diesel::Connection;
use diesel::connection::SimpleConnection;

/// Run `sql` (one or more statements) on the database at `url`: `sqlite://PATH` or
/// `postgres://…`. Panics on failure.
pub fn exec(url: &str, sql: &str) {
    match url.strip_prefix("sqlite://") {
        Some(path) => diesel::SqliteConnection::establish(path)
            .expect("open the SQLite database")
            .batch_execute(sql)
            .expect("run the SQL"),
        None => diesel::PgConnection::establish(url)
            .expect("connect to PostgreSQL")
            .batch_execute(sql)
            .expect("run the SQL"),
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The number `sql` selects as `n` (`SELECT COUNT(*) AS n FROM …`, a 64-bit integer) on the
/// database at `url`. Panics on failure.
pub fn count(url: &str, sql: &str) -> i64 {
    try_count(url, sql).expect("run the query")
}

/// [`count`], with the failure returned (a table that does not exist yet, say).
pub fn try_count(url: &str, sql: &str) -> Result<i64, String> {
    use diesel::RunQueryDsl;
    let query = diesel::sql_query(sql);
    let rows: Vec<Count> = match url.strip_prefix("sqlite://") {
        Some(path) => diesel::SqliteConnection::establish(path)
            .map_err(|e| e.to_string())
            .and_then(|mut c| query.load(&mut c).map_err(|e| e.to_string())),
        None => diesel::PgConnection::establish(url)
            .map_err(|e| e.to_string())
            .and_then(|mut c| query.load(&mut c).map_err(|e| e.to_string())),
    }?;
    Ok(rows.first().map_or(0, |c| c.n))
}
