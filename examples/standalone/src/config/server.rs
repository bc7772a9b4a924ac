//! `[server]`: where the status page, health check and metrics listen, and the token of
//! the buttons.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::KeyError;

/// Where `[server]` listens unless `listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9105";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ServerConfig {
    listen: Option<String>,
    token_env: Option<String>,
    /// Names besides IP addresses and `localhost` that a request's `Host` may carry.
    hosts: Option<Vec<String>>,
    /// How many connections are served at once.
    max_connections: Option<usize>,
    /// How long a client may take to send a request, headers and body.
    #[serde(with = "humantime_serde")]
    request_timeout: Option<Duration>,
}

/// The status page, health check and metrics (`[server]`).
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Where to listen (`listen`, default `127.0.0.1:9105`).
    pub listen: SocketAddr,
    /// The token the check and test actions need, read from the variable `token_env`
    /// names; without it they are off.
    pub token: Option<String>,
    /// The connection and request limits and the accepted `Host` names (`hosts`,
    /// `max_connections`, `request_timeout`).
    pub limits: crate::server::Limits,
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("limits", &self.limits)
            .finish()
    }
}

impl ServerConfig {
    pub(super) fn build(self) -> Result<ServerSettings, KeyError> {
        let listen = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen.parse::<SocketAddr>().map_err(|_| {
            KeyError::new(
                "server.listen",
                format!("{listen:?}: expected an address and port, such as \"{DEFAULT_LISTEN}\""),
            )
        })?;
        let token = match &self.token_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(token) if token.trim().len() >= 16 => Some(token.trim().to_owned()),
                Ok(_) => {
                    return Err(KeyError::new(
                        "server.token_env",
                        format!("${var} must hold a token of at least 16 characters"),
                    ));
                }
                Err(_) => {
                    return Err(KeyError::new(
                        "server.token_env",
                        format!("the environment variable {var} is not set"),
                    ));
                }
            },
        };
        let mut limits = crate::server::Limits::default();
        if let Some(hosts) = self.hosts {
            for host in &hosts {
                let name = host.trim().trim_end_matches('.').to_ascii_lowercase();
                if name.is_empty() || name.contains([':', '/', ' ', '[', ']']) {
                    return Err(KeyError::new(
                        "server.hosts",
                        format!(
                            "{host:?}: expected a DNS name without a port, such as \"monitor.example.com\""
                        ),
                    ));
                }
                limits.hosts.push(name);
            }
        }
        if let Some(n) = self.max_connections {
            if n == 0 {
                return Err(KeyError::new(
                    "server.max_connections",
                    "must be at least 1",
                ));
            }
            limits.max_connections = n;
        }
        if let Some(t) = self.request_timeout {
            if t.is_zero() {
                return Err(KeyError::new(
                    "server.request_timeout",
                    "must be longer than 0s",
                ));
            }
            limits.request_timeout = t;
            limits.connection_lifetime = limits.connection_lifetime.max(t * 2);
        }
        Ok(ServerSettings {
            listen,
            token,
            limits,
        })
    }
}
