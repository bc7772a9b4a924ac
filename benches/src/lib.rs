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

/// A command run by `benches/scripts/cpu_time.py`, which reports the CPU time it used to the
/// microsecond when it is stopped (`wait4`'s rusage; `/proc/PID/stat` counts in 10 ms
/// ticks, too coarse for an idle process).
#[derive(Debug)]
pub struct CpuTimed {
    wrapper: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
    /// The command's own pid.
    pub pid: u32,
}

impl CpuTimed {
    /// Start `program` with `args` under the wrapper; `configure` sets its environment and
    /// directory (the wrapper passes them on).
    pub fn start(
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&std::ffi::OsStr],
        configure: impl FnOnce(&mut std::process::Command),
    ) -> CpuTimed {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cpu_time.py");
        let mut command = Command::new("python3");
        command.arg(script).arg(program).args(args);
        configure(&mut command);
        let mut wrapper = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs scripts/cpu_time.py");
        let mut out = std::io::BufReader::new(wrapper.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let pid = line
            .trim()
            .parse()
            .expect("cpu_time.py starts the program and prints its pid");
        CpuTimed { wrapper, out, pid }
    }

    /// Stop it: the CPU seconds it used in all, user and system.
    pub fn stop(mut self) -> f64 {
        use std::io::BufRead;
        drop(self.wrapper.stdin.take());
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let _ = self.wrapper.wait();
        line.trim()
            .parse()
            .expect("cpu_time.py reports CPU seconds")
    }
}
