//! What the process-level tests share: the application's staff table and signals.

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
