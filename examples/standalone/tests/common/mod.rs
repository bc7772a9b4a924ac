//! What the process-level tests share: the application's staff table, signals, the
//! configuration of a two-source monitor, and the check that a bad key is named.

use std::process::{Child, Command};

/// The application's `staff` table with `active` active members (`staff{i}@example.com`),
/// plus a deleted and a locked one when `inactive`.
pub(crate) fn setup_staff(db: &str, active: usize, inactive: bool) {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut rows: Vec<String> = (0..active)
        .map(|i| format!("('staff{i}@example.com', 'Staff {i}', false, false)"))
        .collect();
    if inactive {
        rows.push("('gone@example.com', 'G', true, false)".to_owned());
        rows.push("('locked@example.com', 'L', false, true)".to_owned());
    }
    let sql = format!(
        "CREATE TABLE staff (email TEXT, name TEXT, is_delete BOOLEAN NOT NULL, is_lock BOOLEAN NOT NULL);
         INSERT INTO staff VALUES {};",
        rows.join(", ")
    );
    if let Some(path) = db.strip_prefix("sqlite://") {
        diesel::SqliteConnection::establish(path)
            .unwrap()
            .batch_execute(&sql)
            .unwrap();
    } else {
        diesel::PgConnection::establish(db)
            .unwrap()
            .batch_execute(&sql)
            .unwrap();
    }
}

/// Send `sig` (e.g. `-STOP`) to `child`.
pub(crate) fn signal(child: &Child, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// A configuration of two HTTP sources at `a` and `b` that must agree, the store `db`,
/// retries 100 ms apart, and the relay on 127.0.0.1:`smtp_port`; then `rest`.
#[allow(dead_code)] // not every test has sources of its own
pub(crate) fn two_source_config(a: &str, b: &str, db: &str, smtp_port: u16, rest: &str) -> String {
    format!(
        "[sources]\nquorum = 2\n[[sources.list]]\nkind = \"http\"\nurl = \"{a}\"\n\
         [[sources.list]]\nkind = \"http\"\nurl = \"{b}\"\n[store]\nurl = \"{db}\"\n\
         [delivery]\nretry_initial = \"100ms\"\nretry_max = \"100ms\"\njitter = 0.0\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n\
         from = \"IP Monitor <noreply@example.com>\"\n{rest}"
    )
}

/// `ip-monitor check` on `entry` (one `[[channels]]` or `[[dns]]` entry, its header
/// included) exits 2 and names `key`; the environment has `env`.
#[allow(dead_code)] // only the tests of settings
pub(crate) fn refuses_entry(bin: &str, entry: &str, env: &[(&str, &str)], key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[store]\nurl = \"sqlite://{}\"\n{entry}",
        dir.path().join("s.db").display()
    );
    std::fs::write(dir.path().join("ip-monitor.toml"), config).unwrap();
    let out = Command::new(bin)
        .current_dir(dir.path())
        .envs(env.iter().copied())
        .arg("--config")
        .arg(dir.path().join("ip-monitor.toml"))
        .arg("check")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{entry}: {stderr}");
    assert!(stderr.contains(key), "{key}: {stderr}");
}
