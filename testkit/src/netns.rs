//! A test run again inside a network namespace of its own (`unshare --net`, which needs
//! root), where it may add interfaces and change their addresses with `ip` without touching
//! the host. Loopback is up in the namespace, so loopback servers work there as anywhere.
//!
//! ```no_run
//! #[test]
//! fn replaced_address() {
//!     if !ip_monitor_testkit::netns::isolated("replaced_address") {
//!         return; // the outer run: the test ran (and passed) inside, or was skipped
//!     }
//!     ip_monitor_testkit::netns::ip("link add veth0 type veth peer name veth1");
//! }
//! ```

use std::process::Command;

const INSIDE: &str = "IP_MONITOR_TEST_NETNS";

/// Whether the caller is the run inside the namespace (go on with the test), or the outer
/// run: then the test binary ran `test` (its path as `cargo test` names it) again inside a
/// new network namespace and that run passed — or namespaces are not available here, and
/// the test is skipped with the reason on stderr. Panics when the inner run failed.
pub fn isolated(test: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        ip("link set lo up");
        return true;
    }
    if let Some(reason) = unavailable() {
        eprintln!("skipped {test}: {reason}");
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .expect("unshare runs");
    assert!(
        status.success(),
        "{test} failed inside its network namespace"
    );
    false
}

/// Why this machine cannot make network namespaces, if it cannot.
fn unavailable() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("network namespaces are Linux's".to_owned());
    }
    let ok = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok("ip", &["-V"]) {
        return Some("no `ip` command (iproute2)".to_owned());
    }
    if !ok("unshare", &["--net", "--", "true"]) {
        return Some("`unshare --net` failed: creating a network namespace needs root".to_owned());
    }
    None
}

/// Run `ip ARGS` (split on spaces) in the current namespace; panics with its stderr when it
/// fails.
pub fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The output of `ip ARGS`.
pub fn ip_output(args: &str) -> String {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Set a sysctl of this namespace's network stack, e.g.
/// `sysctl("net/ipv6/conf/veth0/use_tempaddr", "2")`.
pub fn sysctl(key: &str, value: &str) {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).unwrap_or_else(|e| panic!("{path}: {e}"));
}

/// A veth pair `veth0`/`veth1`, both up, with `use_tempaddr = 2` on `veth0` (privacy
/// addresses preferred, as on desktops): the interface the tests give addresses to.
pub fn veth() {
    ip("link add veth0 type veth peer name veth1");
    sysctl("net/ipv6/conf/veth0/use_tempaddr", "2");
    ip("link set veth0 up");
    ip("link set veth1 up");
}

/// The LAN of the router tests: [`veth`], this host 192.168.7.2 on `veth0`, the router
/// 192.168.7.1 on `veth1`, and the default route through it. Returns the router's address.
pub fn lan() -> std::net::IpAddr {
    veth();
    ip("addr add 192.168.7.2/24 dev veth0");
    ip("addr add 192.168.7.1/24 dev veth1");
    ip("route add default via 192.168.7.1 dev veth0");
    std::net::IpAddr::from([192, 168, 7, 1])
}

/// Run `f` to completion on a runtime of its own (the inner run of a test is a plain
/// `#[test]`: the outer run must not start a runtime it would block in).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

/// Wait (at most 5 s) until no address of `device` is tentative: duplicate address
/// detection has finished.
pub fn settled(device: &str) {
    for _ in 0..100 {
        if !ip_output(&format!("-6 addr show dev {device}")).contains("tentative") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{device} still has tentative addresses after 5 s");
}
