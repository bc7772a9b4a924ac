//! A DNS record kept on the current address through Cloudflare's API, as a notifier: give
//! it to a [`ChannelRouter`](crate::ChannelRouter) as the notifier of a
//! [`Recipient::dns_record`](crate::Recipient::dns_record), and each change updates the record once
//! through the outbox (retried, superseded by a newer change, fenced by the lease).
//!
//! Only records this monitor owns are touched: their comment holds [`MARKER`]. A record of
//! the name and type without the marker (made by hand, or by another tool) is left alone and
//! the delivery fails, saying so. Without any record, one is created with the marker.
//! Test notices do not touch DNS.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::address::Family;
use crate::error::InvalidSetting;
use crate::notice::Notice;
use crate::notify::api::{client, encode, exchange};
use crate::notify::{Notifier, NotifyError, SendPermit, Sent};
use crate::recipients::Recipient;

pub use super::MARKER;

/// Cloudflare's API.
pub const API_BASE: &str = "https://api.cloudflare.com/client/v4";

/// Keeps the A and/or AAAA record of one name on the current address.
#[derive(Clone)]
pub struct CloudflareRecord {
    api_base: String,
    token: String,
    zone: String,
    name: String,
    ttl: u32,
    proxied: bool,
    families: Vec<Family>,
    client: reqwest::Client,
}

impl fmt::Debug for CloudflareRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareRecord")
            .field("zone", &self.zone)
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .field("proxied", &self.proxied)
            .field("families", &self.families)
            .finish_non_exhaustive()
    }
}

impl CloudflareRecord {
    /// The record `name` in `zone` (e.g. `www.example.com` in `example.com`), with an API
    /// token allowed to edit the zone's DNS; A records (v4), TTL automatic, not proxied.
    pub fn new(
        zone: impl Into<String>,
        name: impl Into<String>,
        token: impl Into<String>,
    ) -> Result<Self, InvalidSetting> {
        let (zone, name) = (zone.into(), name.into());
        let (zone_l, name_l) = (zone.to_ascii_lowercase(), name.to_ascii_lowercase());
        if !(name_l == zone_l || name_l.ends_with(&format!(".{zone_l}"))) {
            return Err(InvalidSetting::new(
                "name",
                format!("{name} is not in the zone {zone}"),
            ));
        }
        Ok(CloudflareRecord {
            api_base: API_BASE.to_owned(),
            token: token.into(),
            zone,
            name,
            ttl: 1,
            proxied: false,
            families: vec![Family::V4],
            client: client(Duration::from_secs(15))?,
        })
    }

    /// Another API base URL (a proxy or a test server): `https`, or `http` to a loopback
    /// address only; any other is refused when a call is made (the token would travel in
    /// clear text).
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// The record's TTL in seconds; 1 is Cloudflare's "automatic".
    pub fn ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    /// Whether Cloudflare proxies the name.
    pub fn proxied(mut self, proxied: bool) -> Self {
        self.proxied = proxied;
        self
    }

    /// Which records to keep: A for v4, AAAA for v6.
    pub fn families(mut self, families: impl Into<Vec<Family>>) -> Self {
        self.families = families.into();
        self
    }

    /// The record's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, NotifyError> {
        // The token goes with every call: never in clear text beyond this host.
        crate::notify::api::check_secret_transport(&self.api_base, "api_base")
            .map_err(NotifyError::permanent)?;
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.api_base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let (status, text) = exchange(request).await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let errors: Vec<String> = v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| format!("{} {}", e["code"], e["message"].as_str().unwrap_or("")))
            .collect();
        let why = || {
            let shown: String = text.chars().take(200).collect();
            if errors.is_empty() {
                format!("Cloudflare answered {status}: {shown}")
            } else {
                format!("Cloudflare answered {status}: {}", errors.join("; "))
            }
        };
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(NotifyError::transient(why()));
        }
        if !status.is_success() || v["success"] != true {
            // A wrong token (401), a token without the permission (403), a bad request.
            return Err(NotifyError::permanent(why()));
        }
        Ok(v["result"].clone())
    }

    async fn zone_id(&self) -> Result<String, NotifyError> {
        let zones = self
            .call(
                reqwest::Method::GET,
                &format!("/zones?name={}", encode(&self.zone)),
                None,
            )
            .await?;
        zones[0]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| NotifyError::permanent(format!("no zone {} for this token", self.zone)))
    }

    /// Put the record of `family` on `address`; returns what was done.
    async fn apply(
        &self,
        address: std::net::IpAddr,
        family: Family,
    ) -> Result<String, NotifyError> {
        let kind = match family {
            Family::V4 => "A",
            Family::V6 => "AAAA",
        };
        let zone = self.zone_id().await?;
        let records = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "/zones/{zone}/dns_records?type={kind}&name={}",
                    encode(&self.name)
                ),
                None,
            )
            .await?;
        let records = records.as_array().cloned().unwrap_or_default();
        let owned: Vec<&Value> = records
            .iter()
            .filter(|r| r["comment"].as_str().is_some_and(|c| c.contains(MARKER)))
            .collect();
        let comment = format!("{MARKER}; do not edit by hand");
        let body = json!({
            "type": kind,
            "name": self.name,
            "content": address.to_string(),
            "ttl": self.ttl,
            "proxied": self.proxied,
            "comment": comment,
        });
        let result = match owned.first() {
            None if !records.is_empty() => {
                return Err(NotifyError::permanent(format!(
                    "the {kind} record of {} exists and is not managed by ip-monitor (its comment lacks \"{MARKER}\"): left alone",
                    self.name
                )));
            }
            None => {
                self.call(
                    reqwest::Method::POST,
                    &format!("/zones/{zone}/dns_records"),
                    Some(body),
                )
                .await?
            }
            Some(record) => {
                let id = record["id"].as_str().unwrap_or_default();
                let updated = self
                    .call(
                        reqwest::Method::PATCH,
                        &format!("/zones/{zone}/dns_records/{id}"),
                        Some(body),
                    )
                    .await?;
                // Our own duplicates (two monitors racing on an older version, say).
                for extra in &owned[1..] {
                    let id = extra["id"].as_str().unwrap_or_default();
                    self.call(
                        reqwest::Method::DELETE,
                        &format!("/zones/{zone}/dns_records/{id}"),
                        None,
                    )
                    .await?;
                }
                updated
            }
        };
        if result["content"].as_str() != Some(address.to_string().as_str()) {
            return Err(NotifyError::transient(format!(
                "Cloudflare kept {} for {} {kind}",
                result["content"], self.name
            )));
        }
        Ok(format!("{kind} {} = {address}", self.name))
    }
}

#[async_trait]
impl Notifier for CloudflareRecord {
    async fn send(
        &self,
        notice: &Notice,
        _recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        if !super::takes(&self.name, &self.families, notice, permit)? {
            return Ok(Sent::direct());
        }
        let done = self.apply(notice.address, notice.family).await?;
        tracing::info!("Cloudflare: {done}");
        Ok(Sent::direct())
    }
}
