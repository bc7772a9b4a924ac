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
    use diesel::RunQueryDsl;
    let query = diesel::sql_query(sql);
    let rows: Vec<Count> = match url.strip_prefix("sqlite://") {
        Some(path) => query.load(&mut diesel::SqliteConnection::establish(path).expect("open")),
        None => query.load(&mut diesel::PgConnection::establish(url).expect("connect")),
    }
    .expect("run the query");
    rows.first().map_or(0, |c| c.n)
}
