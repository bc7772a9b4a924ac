//! `[[dns]]`: the DNS records kept on the current address, each one delivery per change
//! (`kind = "cloudflare"`, `"rfc2136"`, `"alidns"`, `"dnspod"` or `"huaweicloud"`, and each
//! kind's keys).

use std::net::SocketAddr;
use std::sync::Arc;

use ip_monitor_core::cloudflare::{self, CloudflareRecord};
use ip_monitor_core::notify::dns::MARKER;
use ip_monitor_core::notify::dns::alidns::{self, AlidnsRecord};
use ip_monitor_core::notify::dns::dnspod::{self, DnspodRecord};
use ip_monitor_core::notify::dns::huaweicloud::HuaweiCloudRecord;
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
    endpoint: Option<String>,
    access_key_id: Option<String>,
    access_key_secret_env: Option<String>,
    line: Option<String>,
    secret_id: Option<String>,
    secret_key_env: Option<String>,
    record_line: Option<String>,
    access_key: Option<String>,
    region: Option<String>,
}

/// The kinds, with the keys of their own (beside `kind`, `zone`, `name`, `ttl`, `families`).
const KINDS: &[(&str, &[&str])] = &[
    ("cloudflare", &["token_env", "api_base", "proxied"]),
    (
        "rfc2136",
        &[
            "server",
            "tsig_key_name",
            "tsig_algorithm",
            "tsig_secret_env",
        ],
    ),
    (
        "alidns",
        &["access_key_id", "access_key_secret_env", "line", "endpoint"],
    ),
    (
        "dnspod",
        &["secret_id", "secret_key_env", "record_line", "endpoint"],
    ),
    (
        "huaweicloud",
        &["access_key", "secret_key_env", "region", "endpoint"],
    ),
];

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
        super::env_value(self.key(name), &var)
    }

    /// A secret from the environment variable that the required key `name` names.
    fn secret(&self, var: Option<String>, name: &str) -> Result<String, KeyError> {
        self.secret_in(self.required(var, name)?, name)
    }

    /// A library setting's error, named as the key of this entry.
    fn invalid(&self, err: ip_monitor_core::InvalidSetting) -> KeyError {
        KeyError::new(self.key(err.field()), err.to_string_without_field())
    }
}

impl DnsConfig {
    /// Entry `i`, whose record must not be one of `taken`.
    pub(super) fn build(self, i: usize, taken: &[String]) -> Result<DnsSetting, KeyError> {
        let key = |name: &str| format!("dns[{i}].{name}");
        let (kind, own) = match self.kind.as_deref() {
            Some(k) => match KINDS.iter().find(|(name, _)| *name == k) {
                Some(found) => *found,
                None => {
                    let names: Vec<String> = KINDS.iter().map(|(n, _)| format!("{n:?}")).collect();
                    return Err(KeyError::new(
                        key("kind"),
                        format!("{k:?}: expected one of {}", names.join(", ")),
                    ));
                }
            },
            None => return Err(KeyError::new(key("kind"), "required")),
        };
        // Keys of the other kinds are refused by name, not ignored.
        if let Some(other) = self.set_keys().into_iter().find(|name| !own.contains(name)) {
            return Err(KeyError::new(key(other), "not a key of this kind"));
        }
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
        let (notifier, plan) = match kind {
            "cloudflare" => self.cloudflare(&entry)?,
            "rfc2136" => self.rfc2136(&entry)?,
            "alidns" => self.alidns(&entry)?,
            "dnspod" => self.dnspod(&entry)?,
            _ => self.huaweicloud(&entry)?,
        };
        Ok(DnsSetting {
            name: record,
            notifier,
            plan,
        })
    }

    /// The kind-specific keys that are set.
    fn set_keys(&self) -> Vec<&'static str> {
        [
            ("token_env", self.token_env.is_some()),
            ("api_base", self.api_base.is_some()),
            ("proxied", self.proxied.is_some()),
            ("server", self.server.is_some()),
            ("tsig_key_name", self.tsig_key_name.is_some()),
            ("tsig_algorithm", self.tsig_algorithm.is_some()),
            ("tsig_secret_env", self.tsig_secret_env.is_some()),
            ("endpoint", self.endpoint.is_some()),
            ("access_key_id", self.access_key_id.is_some()),
            (
                "access_key_secret_env",
                self.access_key_secret_env.is_some(),
            ),
            ("line", self.line.is_some()),
            ("secret_id", self.secret_id.is_some()),
            ("secret_key_env", self.secret_key_env.is_some()),
            ("record_line", self.record_line.is_some()),
            ("access_key", self.access_key.is_some()),
            ("region", self.region.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    fn cloudflare(self, e: &Entry) -> Result<(Arc<dyn Notifier>, String), KeyError> {
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

impl DnsConfig {
    /// `endpoint`, or the provider's own; checked to keep the key off the wire.
    fn endpoint_or(&self, e: &Entry, default: String) -> Result<String, KeyError> {
        let endpoint = self.endpoint.clone().unwrap_or(default);
        ip_monitor_core::notify::check_secret_transport(&endpoint, "endpoint")
            .map_err(|err| e.invalid(err))?;
        Ok(endpoint)
    }

    fn alidns(self, e: &Entry) -> Result<(Arc<dyn Notifier>, String), KeyError> {
        let key_id = e.required(self.access_key_id.clone(), "access_key_id")?;
        let secret = e.secret(self.access_key_secret_env.clone(), "access_key_secret_env")?;
        let endpoint = self.endpoint_or(e, alidns::ENDPOINT.to_owned())?;
        let (ttl, line) = (
            self.ttl.unwrap_or(600),
            self.line.unwrap_or("default".into()),
        );
        let record = AlidnsRecord::new(e.zone.clone(), e.name.clone(), key_id.clone(), secret)
            .map_err(|err| e.invalid(err))?
            .endpoint(endpoint.clone())
            .ttl(ttl)
            .line(line.clone())
            .families(e.families.clone());
        let plan = format!(
            "Alibaba Cloud DNS ({endpoint}, AccessKey {key_id}): set the {} record of {} in {} \
             on the line {line} to {{address}}, ttl {ttl}, only if its remark says \"{}\" \
             (added and marked if missing), then read it back",
            e.types, e.name, e.zone, MARKER
        );
        Ok((Arc::new(record), plan))
    }

    fn dnspod(self, e: &Entry) -> Result<(Arc<dyn Notifier>, String), KeyError> {
        let secret_id = e.required(self.secret_id.clone(), "secret_id")?;
        let secret = e.secret(self.secret_key_env.clone(), "secret_key_env")?;
        let endpoint = self.endpoint_or(e, dnspod::ENDPOINT.to_owned())?;
        let ttl = self.ttl.unwrap_or(600);
        let line = self.record_line.unwrap_or("默认".into());
        let record = DnspodRecord::new(e.zone.clone(), e.name.clone(), secret_id.clone(), secret)
            .map_err(|err| e.invalid(err))?
            .endpoint(endpoint.clone())
            .ttl(ttl)
            .record_line(line.clone())
            .families(e.families.clone());
        let plan = format!(
            "DNSPod ({endpoint}, SecretId {secret_id}): set the {} record of {} in {} \
             on the line {line} to {{address}}, ttl {ttl}, only if its remark says \"{}\" \
             (created if missing), then read it back",
            e.types, e.name, e.zone, MARKER
        );
        Ok((Arc::new(record), plan))
    }

    fn huaweicloud(self, e: &Entry) -> Result<(Arc<dyn Notifier>, String), KeyError> {
        let access_key = e.required(self.access_key.clone(), "access_key")?;
        let secret = e.secret(self.secret_key_env.clone(), "secret_key_env")?;
        let region = e.required(self.region.clone(), "region")?;
        let ttl = self.ttl.unwrap_or(300);
        let mut record = HuaweiCloudRecord::new(
            &region,
            e.zone.clone(),
            e.name.clone(),
            access_key.clone(),
            secret,
        )
        .map_err(|err| e.invalid(err))?;
        let endpoint = self.endpoint_or(e, record.endpoint_url().to_owned())?;
        record = record
            .endpoint(endpoint.clone())
            .ttl(ttl)
            .families(e.families.clone());
        let plan = format!(
            "Huawei Cloud DNS ({endpoint}, access key {access_key}): set the {} record set of {} \
             in {} to {{address}}, ttl {ttl}, only if its description says \"{}\" \
             (created if missing), then read it back",
            e.types, e.name, e.zone, MARKER
        );
        Ok((Arc::new(record), plan))
    }
}

/// `v`, set and not empty, or the error that `key` is required.
fn required(v: Option<String>, key: String) -> Result<String, KeyError> {
    v.filter(|v| !v.is_empty())
        .ok_or_else(|| KeyError::new(key, "required"))
}
