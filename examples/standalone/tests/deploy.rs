//! The deployment files shipped beside the binary: the systemd unit passes systemd's own
//! check, and the Dockerfile builds with the toolchain the workspace declares and runs the
//! binary as a user of its own.

use std::path::Path;
use std::process::Command;

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
