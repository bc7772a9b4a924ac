//! The deployment files shipped beside the binary: the systemd unit passes systemd's own
//! check, and the Dockerfile builds with the toolchain the workspace declares and runs the
//! binary as a user of its own.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ip_monitor_testkit::{Behavior, HttpServer};

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");

fn deploy_file(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(name),
    )
    .unwrap()
}

#[test]
#[cfg_attr(
    not(systemd_tests),
    ignore = "needs systemd-analyze (Debian package systemd)"
)]
fn the_systemd_unit_passes_systemd_analyze() {
    let unit = deploy_file("ip-monitor.service");
    for (key, why) in [
        ("DynamicUser=yes", "a user of its own"),
        ("StateDirectory=ip-monitor", "state in StateDirectory"),
        ("Restart=on-failure", "restarts on failure"),
        ("EnvironmentFile=", "the password from an environment file"),
    ] {
        assert!(unit.lines().any(|l| l.starts_with(key)), "{why}: {key}");
    }
    // systemd checks that ExecStart's program exists: this build's binary stands in.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ip-monitor.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/ip-monitor", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze has remarks: {stderr}"
    );
}

#[test]
#[cfg_attr(
    not(systemd_tests),
    ignore = "needs systemd-analyze (Debian package systemd)"
)]
fn the_systemd_unit_is_rated_ok_by_systemd_analyze_security() {
    let unit = deploy_file("ip-monitor.service");
    for key in [
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
        "ProtectClock=yes",
        "ProtectKernelLogs=yes",
        "ProtectHostname=yes",
        "RestrictRealtime=yes",
        "ProtectProc=invisible",
        "UMask=0077",
    ] {
        assert!(unit.lines().any(|l| l == key), "{key}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ip-monitor.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/ip-monitor", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let overall = stdout
        .lines()
        .find_map(|l| l.split("ip-monitor.service: ").nth(1))
        .unwrap_or_else(|| panic!("no overall rating: {stdout}"));
    let level: f64 = overall.split(' ').next().unwrap().parse().unwrap();
    assert!(level <= 2.0 && overall.contains("OK"), "{overall}");
}

/// The unit's command line, with the binary of this build and the credentials directory
/// systemd would make, starts the service and stops on SIGTERM with exit 0.
#[tokio::test]
async fn the_units_command_line_runs_the_service() {
    let unit = deploy_file("ip-monitor.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let credential = unit
        .lines()
        .find_map(|l| l.strip_prefix("LoadCredential="))
        .and_then(|c| c.split_once(':'))
        .expect("LoadCredential=NAME:PATH");
    let state = tempfile::tempdir().unwrap();
    let credentials = tempfile::tempdir().unwrap();
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.10")).await;
    std::fs::write(
        credentials.path().join(credential.0),
        format!(
            "[[sources.list]]\nkind = \"http\"\nurl = \"{}\"\n[recipients]\nstatic = []\n",
            source.url()
        ),
    )
    .unwrap();
    let argv: Vec<String> = exec
        .split_whitespace()
        .map(|a| {
            a.replace("/usr/local/bin/ip-monitor", BIN)
                .replace("%d", &credentials.path().display().to_string())
        })
        .collect();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(state.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let running = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.contains("monitor running") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(running, "the service did not start: {seen:?}");
    assert!(status.success(), "{status}: {seen:?}");
    assert!(
        state.path().join("ip-monitor.db").exists(),
        "the store in the working directory"
    );
}

#[test]
fn the_dockerfile_builds_with_the_declared_toolchain_and_runs_unprivileged() {
    let dockerfile = deploy_file("Dockerfile");
    let from: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage: {from:?}");
    let workspace =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"))
            .unwrap();
    let rust_version = workspace
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        from[0].starts_with(&format!("rust:{rust_version}-")),
        "the build stage uses rust-version {rust_version}: {}",
        from[0]
    );
    assert!(dockerfile.contains("cargo build --release --locked -p ip-monitor-standalone"));
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "{user}"
    );
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/ip-monitor\""));
}
