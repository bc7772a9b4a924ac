//! `[server]`: where the status page, health check and metrics listen, and the token of
//! the buttons.

use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;

use super::KeyError;

/// Where `[server]` listens unless `listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9105";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ServerConfig {
    listen: Option<String>,
    token_env: Option<String>,
}

/// The status page, health check and metrics (`[server]`).
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Where to listen (`listen`, default `127.0.0.1:9105`).
    pub listen: SocketAddr,
    /// The token the check and test actions need, read from the variable `token_env`
    /// names; without it they are off.
    pub token: Option<String>,
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "…"))
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
        Ok(ServerSettings { listen, token })
    }
}
