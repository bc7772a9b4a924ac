//! Benchmarks for ip-monitor. The criterion benches are in `benches/`; run them with
//! `cargo bench -p ip-monitor-benches`. Figures are kept in `docs/performance.md`.

/// A fresh database for one run: a new SQLite file, or a new database on a PostgreSQL server.
pub fn fresh(kind: &str, base: &str, dir: &std::path::Path) -> String {
    if kind == "sqlite" {
        return format!(
            "sqlite://{}",
            dir.join(format!("{:016x}.db", fastrand::u64(..))).display()
        );
    }
    let name = format!("ip_monitor_bench_{:016x}", fastrand::u64(..));
    ip_monitor_testkit::sql::exec(base, &format!("CREATE DATABASE {name}"));
    let server = base.rsplit_once('/').map_or(base, |(b, _)| b);
    format!("{server}/{name}")
}

/// The application's staff table with `n` active rows.
pub fn staff_table(url: &str, n: usize) {
    let mut sql = String::from(
        "CREATE TABLE staff (email TEXT, name TEXT, is_delete BOOLEAN NOT NULL DEFAULT false, \
         is_lock BOOLEAN NOT NULL DEFAULT false);",
    );
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| format!("('staff{i}@example.com', 'Staff Member {i}')"))
            .collect();
        sql.push_str(&format!(
            "INSERT INTO staff (email, name) VALUES {};",
            rows.join(",")
        ));
    }
    ip_monitor_testkit::sql::exec(url, &sql);
}

/// A child process (the binary, a relay, a sink), killed and reaped when dropped.
#[derive(Debug)]
pub struct Kill(pub std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
