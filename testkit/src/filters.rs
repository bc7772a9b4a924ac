//! The spam filters receivers run, offline: SpamAssassin with its shipped rules and network
//! tests off (`spamassassin -L -t`), and a private rspamd on 127.0.0.1 with its network
//! modules off (no DNS lists, SPF, DKIM or DMARC lookups, no fuzzy or reputation queries,
//! no remote maps), scored through `rspamc`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A filter's verdict: the score and the rules that scored (zero-scored ones left out).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The total score.
    pub score: f64,
    /// `NAME (points)` of each rule that added or took points.
    pub rules: Vec<String>,
}

/// Why SpamAssassin cannot score here, if it cannot.
pub fn spamassassin_unavailable() -> Option<String> {
    let ok = Command::new("spamassassin")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (!ok).then(|| "spamassassin is not installed (Debian package spamassassin)".to_owned())
}

/// Score `message` with `spamassassin -L -t` (local tests only, shipped rules).
pub fn spamassassin(message: &[u8]) -> Result<Verdict, String> {
    let mut child = Command::new("spamassassin")
        .args(["-L", "-t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spamassassin: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(message)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let report = String::from_utf8_lossy(&out.stdout);
    let details = report
        .split("Content analysis details:")
        .nth(1)
        .ok_or_else(|| format!("no report from spamassassin: {report}"))?;
    let score = details
        .trim_start()
        .strip_prefix('(')
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no score in {details}"))?;
    let rules = details
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let points: f64 = words.next()?.parse().ok()?;
            let name = words.next()?;
            (points != 0.0
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .then(|| format!("{name} ({points})"))
        })
        .collect();
    Ok(Verdict { score, rules })
}

/// A private rspamd on 127.0.0.1; stopped when dropped.
#[derive(Debug)]
pub struct Rspamd {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// The modules that ask the network: off.
const NETWORK_MODULES: &[&str] = &[
    "asn",
    "arc",
    "clickhouse",
    "dkim",
    "dkim_signing",
    "dmarc",
    "elastic",
    "emails",
    "fuzzy_check",
    "greylist",
    "hfilter",
    "history_redis",
    "metadata_exporter",
    "multimap",
    "mx_check",
    "neural",
    "phishing",
    "ratelimit",
    "rbl",
    "replies",
    "reputation",
    "spf",
    "url_reputation",
];

impl Rspamd {
    /// Why rspamd cannot run here, if it cannot.
    pub fn unavailable() -> Option<String> {
        let ok = [("rspamd", "--version"), ("rspamc", "--help")]
            .iter()
            .all(|(c, arg)| {
                Command::new(c)
                    .arg(arg)
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
        (!ok).then(|| "rspamd is not installed (Debian package rspamd)".to_owned())
    }

    /// Start one with Debian's configuration and the network modules off; ready when this
    /// returns (the first start compiles its rules, which takes some seconds).
    pub fn start() -> Result<Self, String> {
        if let Some(why) = Self::unavailable() {
            return Err(why);
        }
        let dir =
            std::env::temp_dir().join(format!("ip-monitor-rspamd-{:016x}", fastrand::u64(..)));
        let local = dir.join("local.d");
        std::fs::create_dir_all(&local).map_err(|e| e.to_string())?;
        let port = crate::free_port();
        let write = |name: &str, text: String| {
            std::fs::write(local.join(name), text).map_err(|e| e.to_string())
        };
        write(
            "worker-normal.inc",
            format!("bind_socket = \"127.0.0.1:{port}\";\ncount = 1;\n"),
        )?;
        write(
            "worker-controller.inc",
            format!(
                "bind_socket = \"127.0.0.1:{}\";\ncount = 1;\n",
                crate::free_port()
            ),
        )?;
        write(
            "worker-proxy.inc",
            format!(
                "bind_socket = \"127.0.0.1:{}\";\ncount = 1;\n",
                crate::free_port()
            ),
        )?;
        write(
            "logging.inc",
            "type = \"console\";\nlevel = \"error\";\n".to_owned(),
        )?;
        // No DNS: every lookup fails at once on a closed loopback port.
        write(
            "options.inc",
            format!(
                "dns {{ nameserver = [\"127.0.0.1:1\"]; timeout = 0.1s; retransmits = 0; }}\n\
                 hs_cache_dir = \"{}\";\n",
                dir.display()
            ),
        )?;
        for module in NETWORK_MODULES {
            write(&format!("{module}.conf"), "enabled = false;\n".to_owned())?;
        }
        let mut cmd = Command::new("rspamd");
        cmd.arg("-f").args(["-c", "/etc/rspamd/rspamd.conf"]);
        if crate::is_root() {
            let _ = Command::new("chown")
                .args(["-R", "_rspamd"])
                .arg(&dir)
                .output();
            cmd.args(["-u", "_rspamd", "-g", "_rspamd"]);
        }
        for k in ["LOCAL_CONFDIR", "DBDIR", "RUNDIR", "LOGDIR"] {
            cmd.arg("--var").arg(format!("{k}={}", dir.display()));
        }
        cmd.args(["-p"]).arg(dir.join("rspamd.pid"));
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("rspamd: {e}"))?;
        let rspamd = Rspamd { child, port, dir };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(rspamd);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "rspamd did not listen on 127.0.0.1:{port} within 2 minutes"
        ))
    }

    /// Score `message`, as received from 127.0.0.1.
    pub fn score(&self, message: &[u8]) -> Result<Verdict, String> {
        let file = self.dir.join(format!("{:016x}.eml", fastrand::u64(..)));
        std::fs::write(&file, message).map_err(|e| e.to_string())?;
        let out = Command::new("rspamc")
            .arg("-h")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--ip", "127.0.0.1", "symbols"])
            .arg(&file)
            .output()
            .map_err(|e| format!("rspamc: {e}"))?;
        let _ = std::fs::remove_file(&file);
        let report = String::from_utf8_lossy(&out.stdout);
        let score = report
            .lines()
            .find_map(|l| l.strip_prefix("Score: "))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no score from rspamc: {report}"))?;
        let rules = report
            .lines()
            .filter_map(|l| l.strip_prefix("Symbol: "))
            .filter(|s| !s.contains("(0.00)"))
            .map(|s| s.split('[').next().unwrap_or(s).trim().to_owned())
            .collect();
        Ok(Verdict { score, rules })
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        // SIGTERM: the main process stops its workers too.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .output();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
