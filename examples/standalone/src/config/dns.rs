//! `[[dns]]`: the DNS records kept on the current address, each one delivery per change
//! (`kind = "cloudflare"` or `"rfc2136"`, and each kind's keys).

use std::net::SocketAddr;
use std::sync::Arc;

use ip_monitor_core::cloudflare::{self, CloudflareRecord};
use ip_monitor_core::rfc2136::Rfc2136Record;
use ip_monitor_core::{Family, Notifier, Recipient};
use serde::Deserialize;

use super::KeyError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct DnsConfig {
    kind: Option<String>,
    zone: Option<String>,
    name: Option<String>,
    ttl: Option<u32>,
    proxied: Option<bool>,
    token_env: Option<String>,
    api_base: Option<String>,
    families: Option<Vec<Family>>,
    server: Option<String>,
    tsig_key_name: Option<String>,
    tsig_algorithm: Option<String>,
    tsig_secret_env: Option<String>,
}

/// One `[[dns]]` entry.
#[derive(Debug, Clone)]
pub struct DnsSetting {
    /// The record's name, as its deliveries' [`Recipient::dns_record`] holds it.
    pub name: String,
    /// What writes the record.
    pub notifier: Arc<dyn Notifier>,
    /// What an update does, in words, for `preview`: `{address}` is the new address.
    pub plan: String,
}

/// What every kind needs: the entry's keys, its zone and name, its families.
struct Entry {
    index: usize,
    zone: String,
    name: String,
    families: Vec<Family>,
    /// "A", "AAAA" or "A and AAAA", for the plan.
    types: String,
}

impl Entry {
    fn key(&self, name: &str) -> String {
        format!("dns[{}].{name}", self.index)
    }

    fn required(&self, v: Option<String>, name: &str) -> Result<String, KeyError> {
        required(v, self.key(name))
    }

    /// The secret in the environment variable `var`, which the key `name` names.
    fn secret_in(&self, var: String, name: &str) -> Result<String, KeyError> {
        std::env::var(&var).map_err(|_| {
            KeyError::new(
                self.key(name),
                format!("the environment variable {var} is not set"),
            )
        })
    }

    /// Keys of the other kind are refused by name, not ignored.
    fn refuse(&self, names: &[(&str, bool)]) -> Result<(), KeyError> {
        match names.iter().find(|(_, set)| *set) {
            Some((n, _)) => Err(KeyError::new(self.key(n), "not a key of this kind")),
            None => Ok(()),
        }
    }
}

impl DnsConfig {
    /// Entry `i`, whose record must not be one of `taken`.
    pub(super) fn build(self, i: usize, taken: &[String]) -> Result<DnsSetting, KeyError> {
        let key = |name: &str| format!("dns[{i}].{name}");
        let kind = match self.kind.as_deref() {
            Some(k @ ("cloudflare" | "rfc2136")) => k.to_owned(),
            Some(other) => {
                return Err(KeyError::new(
                    key("kind"),
                    format!("{other:?}: expected \"rfc2136\" or \"cloudflare\""),
                ));
            }
            None => return Err(KeyError::new(key("kind"), "required")),
        };
        let families = match self.families.clone() {
            Some(f) if f.is_empty() => {
                return Err(KeyError::new(
                    key("families"),
                    "at least one of \"v4\", \"v6\"",
                ));
            }
            Some(f) => f,
            None => vec![Family::V4],
        };
        let types = families
            .iter()
            .map(|f| match f {
                Family::V4 => "A",
                Family::V6 => "AAAA",
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let entry = Entry {
            index: i,
            zone: required(self.zone.clone(), key("zone"))?,
            name: required(self.name.clone(), key("name"))?,
            families,
            types,
        };
        let record = match Recipient::dns_record(&entry.name) {
            Ok(r) => r.email().to_owned(),
            Err(e) => {
                let name = &entry.name;
                return Err(KeyError::new(
                    key("name"),
                    format!("{name:?}: {}", e.reason),
                ));
            }
        };
        if taken.contains(&record) {
            let name = &entry.name;
            return Err(KeyError::new(
                key("name"),
                format!("{name:?} is listed twice"),
            ));
        }
        let (notifier, plan) = if kind == "cloudflare" {
            self.cloudflare(&entry)?
        } else {
            self.rfc2136(&entry)?
        };
        Ok(DnsSetting {
            name: record,
            notifier,
            plan,
        })
    }

    fn cloudflare(self, e: &Entry) -> Result<(Arc<dyn Notifier>, String), KeyError> {
        e.refuse(&[
            ("server", self.server.is_some()),
            ("tsig_key_name", self.tsig_key_name.is_some()),
            ("tsig_algorithm", self.tsig_algorithm.is_some()),
            ("tsig_secret_env", self.tsig_secret_env.is_some()),
        ])?;
        let token = e.secret_in(e.required(self.token_env, "token_env")?, "token_env")?;
        let (ttl, proxied) = (self.ttl.unwrap_or(1), self.proxied.unwrap_or(false));
        let base = self
            .api_base
            .unwrap_or_else(|| cloudflare::API_BASE.to_owned());
        ip_monitor_core::notify::check_secret_transport(&base, "api_base")
            .map_err(|err| KeyError::new(e.key(err.field()), err.to_string_without_field()))?;
        let record = CloudflareRecord::new(e.zone.clone(), e.name.clone(), token)
            .map_err(|err| KeyError::new(e.key(err.field()), err.to_string_without_field()))?
            .ttl(ttl)
            .proxied(proxied)
            .families(e.families.clone())
            .api_base(base.clone());
        let plan = format!(
            "Cloudflare ({base}): set the {} record of {} in {} to {{address}}, \
             ttl {ttl}, proxied {proxied}, only if its comment says \"{}\" (created if missing)",
            e.types,
            e.name,
            e.zone,
            cloudflare::MARKER
        );
        Ok((Arc::new(record), plan))
    }

    fn rfc2136(self, e: &Entry) -> Result<(Arc<dyn Notifier>, String), KeyError> {
        e.refuse(&[
            ("token_env", self.token_env.is_some()),
            ("api_base", self.api_base.is_some()),
            ("proxied", self.proxied.is_some()),
        ])?;
        let server = e.required(self.server, "server")?;
        let server: SocketAddr = server
            .parse()
            .or_else(|_| format!("{server}:53").parse())
            .map_err(|_| {
                KeyError::new(
                    e.key("server"),
                    format!("{server:?}: expected IP or IP:PORT, e.g. \"192.0.2.53:53\""),
                )
            })?;
        let secret = e.secret_in(
            e.required(self.tsig_secret_env, "tsig_secret_env")?,
            "tsig_secret_env",
        )?;
        let algorithm = self
            .tsig_algorithm
            .unwrap_or_else(|| "hmac-sha256".to_owned());
        let key_name = e.required(self.tsig_key_name, "tsig_key_name")?;
        let ttl = self.ttl.unwrap_or(300);
        let plan = format!(
            "RFC 2136 update at {server}, signed with the TSIG key {key_name} ({algorithm}): \
             replace the {} set of {} in {} with {{address}}, ttl {ttl}, then read it back",
            e.types, e.name, e.zone
        );
        let record = Rfc2136Record::new(server, &e.zone, &e.name, &key_name, &algorithm, &secret)
            .map_err(|err| {
                // The secret itself is not a key of the file: the variable that holds it is.
                let field = match err.field() {
                    "tsig_secret" => "tsig_secret_env",
                    field => field,
                };
                KeyError::new(e.key(field), err.to_string_without_field())
            })?
            .ttl(ttl)
            .families(e.families.clone());
        Ok((Arc::new(record), plan))
    }
}

/// `v`, set and not empty, or the error that `key` is required.
fn required(v: Option<String>, key: String) -> Result<String, KeyError> {
    v.filter(|v| !v.is_empty())
        .ok_or_else(|| KeyError::new(key, "required"))
}
