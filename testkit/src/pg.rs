use diesel::{Connection, PgConnection, RunQueryDsl};

/// The environment variable holding the server's URL.
pub const URL_VAR: &str = "IP_MONITOR_TEST_PG_URL";

/// The environment variable holding the server's Unix socket, as `DIRECTORY:PORT`.
pub const SOCKET_VAR: &str = "IP_MONITOR_TEST_PG_SOCKET";

/// Create an empty database on the server and return its URL over the server's Unix socket
/// (`postgres://postgres@/NAME?host=DIR&port=PORT`), which a test in a network namespace of
/// its own reaches as well. `None` without a server.
pub fn fresh_database_on_socket() -> Option<String> {
    let socket = std::env::var(SOCKET_VAR).ok().filter(|s| !s.is_empty())?;
    let (dir, port) = socket.rsplit_once(':')?;
    let base = format!("postgres://postgres@/postgres?host={dir}&port={port}");
    let name = format!("ip_monitor_test_{:016x}", fastrand::u64(..));
    let mut conn = PgConnection::establish(&base).expect("connect to the test PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create a test database");
    Some(format!(
        "postgres://postgres@/{name}?host={dir}&port={port}"
    ))
}

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
