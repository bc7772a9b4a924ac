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
