use diesel::{Connection, PgConnection, RunQueryDsl};

/// The environment variable holding the server's URL.
pub const URL_VAR: &str = "IP_MONITOR_TEST_PG_URL";

/// The server's URL, if one was started.
pub fn server_url() -> Option<String> {
    std::env::var(URL_VAR).ok().filter(|u| !u.is_empty())
}

/// Create an empty database on the server and return its URL. Panics without a server.
pub fn fresh_database() -> String {
    let url =
        server_url().unwrap_or_else(|| panic!("{URL_VAR} is not set: run bash scripts/test.sh"));
    let name = format!("ip_monitor_test_{:016x}", fastrand::u64(..));
    let mut conn = PgConnection::establish(&url).expect("connect to the test PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create a test database");
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}
