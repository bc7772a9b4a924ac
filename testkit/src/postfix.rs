//! A private Postfix instance on 127.0.0.1 that throttles as a provider's relay does, with
//! anvil's per-client limits (loopback not exempt), and relays what it accepts to another
//! loopback SMTP server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Anvil's per-client limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `smtpd_client_connection_count_limit`: sessions at once.
    pub sessions: u32,
    /// `smtpd_client_message_rate_limit`: messages per `time_unit`.
    pub messages: u32,
    /// `anvil_rate_time_unit`.
    pub time_unit: Duration,
}

impl Default for Limits {
    /// Two sessions, 60 messages per 10 s.
    fn default() -> Self {
        Limits {
            sessions: 2,
            messages: 60,
            time_unit: Duration::from_secs(10),
        }
    }
}

/// A running Postfix; stopped and removed when dropped.
#[derive(Debug)]
pub struct ThrottlingRelay {
    /// The port its smtpd listens on, on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

const POSTFIX: &str = "/usr/sbin/postfix";

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Why a throttling relay cannot run here, if it cannot: Postfix is missing, or this is not
/// root (Postfix's master runs as root).
pub fn unavailable() -> Option<String> {
    if !Path::new(POSTFIX).exists() {
        return Some("Postfix is not installed (Debian package postfix)".to_owned());
    }
    (!crate::is_root()).then(|| "Postfix's master must be started as root".to_owned())
}

impl ThrottlingRelay {
    /// Start one with `limits`, relaying everything it accepts to 127.0.0.1:`relay_to`.
    pub fn start(limits: Limits, relay_to: u16) -> Result<Self, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        let dir =
            std::env::temp_dir().join(format!("ip-monitor-postfix-{:016x}", fastrand::u64(..)));
        for sub in ["etc", "spool", "data"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        run(Command::new("chown").arg("postfix").arg(dir.join("data")))?;
        let port = crate::free_port();
        let d = dir.display();
        let main = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {d}/spool\n\
             data_directory = {d}/data\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             myhostname = throttling-relay.invalid\n\
             mydomain = invalid\n\
             myorigin = throttling-relay.invalid\n\
             mydestination =\n\
             mynetworks = 127.0.0.0/8\n\
             relayhost = [127.0.0.1]:{relay_to}\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\n\
             smtpd_client_connection_count_limit = {sessions}\n\
             smtpd_client_message_rate_limit = {messages}\n\
             anvil_rate_time_unit = {unit}s\n\
             smtpd_client_event_limit_exceptions =\n\
             maillog_file = {d}/maillog\n\
             maillog_file_prefixes = {d}\n\
             alias_maps =\n\
             alias_database =\n\
             local_recipient_maps =\n\
             biff = no\n\
             smtp_tls_security_level = none\n\
             smtpd_tls_security_level = none\n",
            sessions = limits.sessions,
            messages = limits.messages,
            unit = limits.time_unit.as_secs().max(1),
        );
        let services = [
            ("cleanup", "unix n - n - 0 cleanup"),
            ("qmgr", "unix n - n 300 1 qmgr"),
            ("rewrite", "unix - - n - - trivial-rewrite"),
            ("bounce", "unix - - n - 0 bounce"),
            ("defer", "unix - - n - 0 bounce"),
            ("trace", "unix - - n - 0 bounce"),
            ("verify", "unix - - n - 1 verify"),
            ("flush", "unix n - n 1000? 0 flush"),
            ("proxymap", "unix - - n - - proxymap"),
            ("smtp", "unix - - n - - smtp"),
            ("relay", "unix - - n - - smtp"),
            ("error", "unix - - n - - error"),
            ("retry", "unix - - n - - error"),
            ("discard", "unix - - n - - discard"),
            ("anvil", "unix - - n - 1 anvil"),
            ("scache", "unix - - n - 1 scache"),
            ("postlog", "unix-dgram n - n - 1 postlogd"),
            ("showq", "unix n - n - - showq"),
        ];
        let mut master = format!("127.0.0.1:{port} inet n - n - - smtpd\n");
        for (name, rest) in services {
            master.push_str(&format!("{name} {rest}\n"));
        }
        std::fs::write(dir.join("etc/main.cf"), main).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("etc/master.cf"), master).map_err(|e| e.to_string())?;
        let relay = ThrottlingRelay { port, dir };
        run(Command::new(POSTFIX)
            .arg("-c")
            .arg(relay.dir.join("etc"))
            .arg("start"))?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(relay);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(format!(
            "Postfix did not listen on 127.0.0.1:{port}: {}",
            relay.log()
        ))
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// The sessions and messages it refused for its limits, by its own log.
    pub fn refusals(&self) -> Refusals {
        let log = self.log();
        let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
        Refusals {
            sessions: count("Connection concurrency limit exceeded"),
            messages: count("Message delivery request rate limit exceeded"),
        }
    }

    /// Messages it accepted, by its own log (one `message-id=` line each).
    pub fn accepted(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("postfix/cleanup") && l.contains("message-id="))
            .count()
    }
}

/// What a [`ThrottlingRelay`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusals {
    /// Sessions refused at the greeting (`421 4.7.0 … too many connections`).
    pub sessions: usize,
    /// Messages refused at `MAIL FROM` (`450 4.7.1 … too much mail`).
    pub messages: usize,
}

impl Refusals {
    /// Both together.
    pub fn total(&self) -> usize {
        self.sessions + self.messages
    }
}

impl Drop for ThrottlingRelay {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.join("etc"))
            .arg("abort")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
