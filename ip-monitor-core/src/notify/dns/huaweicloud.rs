//! A DNS record set kept on the current address through Huawei Cloud DNS (the v2 zones
//! and v2.1 record sets API), as a notifier: give it to a
//! [`ChannelRouter`](crate::ChannelRouter) as the notifier of a
//! [`Recipient::dns_record`](crate::Recipient::dns_record), and each change updates the
//! record set once through the outbox (retried, superseded by a newer change, fenced by the
//! lease).
//!
//! Every request is signed with AK/SK (SDK-HMAC-SHA256). Only a record set whose
//! description holds [`MARKER`](super::MARKER) is changed; one without it is left alone and
//! the delivery fails, saying so. Without any record set of the name and type, one is
//! created with the description. After each write the set is read back. Test notices do not
//! touch DNS.
//!
//! ```
//! use ip_monitor_core::notify::dns::huaweicloud::HuaweiCloudRecord;
//!
//! let record =
//!     HuaweiCloudRecord::new("cn-north-4", "example.com", "www.example.com", "AK", "Zq-secret-value")
//!         .unwrap();
//! assert_eq!(record.endpoint_url(), "https://dns.cn-north-4.myhuaweicloud.com");
//! assert!(!format!("{record:?}").contains("Zq-secret-value"));
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::cloud::{self, Found, RecordApi, Site, Utc};
use crate::address::Family;
use crate::error::InvalidSetting;
use crate::notify::NotifyError;
use crate::notify::api::{encode, exchange};

/// Keeps the A and/or AAAA record set of one name on the current address.
#[derive(Clone)]
pub struct HuaweiCloudRecord {
    site: Site,
    access_key: String,
    secret_key: String,
    /// The zone's id, once looked up.
    zone_id: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for HuaweiCloudRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.site
            .fields(&mut f.debug_struct("HuaweiCloudRecord"))
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl HuaweiCloudRecord {
    cloud::site_methods!("The record set's TTL in seconds.");

    /// The record set `name` in the public zone `zone` (e.g. `www.example.com` in
    /// `example.com`), written through the endpoint of `region` with the key pair
    /// `access_key` / `secret_key`; A records (v4), TTL 300.
    pub fn new(
        region: &str,
        zone: impl Into<String>,
        name: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<Self, InvalidSetting> {
        let region_ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(InvalidSetting::new(
                "region",
                format!("{region:?}: expected a region id such as \"cn-north-4\""),
            ));
        }
        let endpoint = format!("https://dns.{region}.myhuaweicloud.com");
        Ok(HuaweiCloudRecord {
            site: Site::new(zone.into(), name.into(), endpoint, 300)?,
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            zone_id: Arc::default(),
        })
    }

    /// The endpoint the calls go to.
    pub fn endpoint_url(&self) -> &str {
        &self.site.endpoint
    }

    /// `METHOD path?query` with `body`, signed; the answer's JSON.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, NotifyError> {
        let base = self.site.base()?;
        let query = cloud::canonical_query(query);
        let url = base
            .join(&format!("{}?{query}", path.trim_start_matches('/')))
            .map_err(|e| NotifyError::permanent(format!("endpoint: {e}")))?;
        let host = cloud::host_header(&url);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let date = Utc::at(SystemTime::now()).basic();
        let mut uri: String = url
            .path()
            .split('/')
            .map(encode)
            .collect::<Vec<_>>()
            .join("/");
        if !uri.ends_with('/') {
            uri.push('/');
        }
        let signed = "content-type;host;x-sdk-date";
        let canonical = format!(
            "{method}\n{uri}\n{query}\ncontent-type:application/json\nhost:{host}\n\
             x-sdk-date:{date}\n\n{signed}\n{}",
            cloud::sha256_hex(body.as_bytes())
        );
        let to_sign = format!(
            "SDK-HMAC-SHA256\n{date}\n{}",
            cloud::sha256_hex(canonical.as_bytes())
        );
        let signature = cloud::hex(&cloud::hmac_sha256(
            self.secret_key.as_bytes(),
            to_sign.as_bytes(),
        ));
        let request = self
            .site
            .client
            .request(method.clone(), url)
            .header(
                "authorization",
                format!(
                    "SDK-HMAC-SHA256 Access={}, SignedHeaders={signed}, Signature={signature}",
                    self.access_key
                ),
            )
            .header("content-type", "application/json")
            .header("host", &host)
            .header("x-sdk-date", &date)
            .body(body);
        let (status, text) = exchange(request).await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() && v.is_object() {
            return Ok(v);
        }
        let code = v["code"].as_str().or(v["error_code"].as_str());
        let message = v["message"].as_str().or(v["error_msg"].as_str());
        let why = match code {
            Some(code) => format!(
                "Huawei Cloud DNS answered {status} to {method} {path}: {code}: {}",
                message.unwrap_or("")
            ),
            None => {
                let shown: String = text.chars().take(200).collect();
                format!("Huawei Cloud DNS answered {status} to {method} {path}: {shown}")
            }
        };
        if status.as_u16() == 429 || status.is_server_error() {
            Err(NotifyError::transient(why))
        } else {
            // A wrong key or signature (APIGW.0301), no permission, a bad parameter.
            Err(NotifyError::permanent(why))
        }
    }

    /// The public zone's id: looked up once, then kept.
    async fn zone_id(&self) -> Result<String, NotifyError> {
        if let Some(id) = self
            .zone_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(id);
        }
        let fqdn = format!("{}.", self.site.zone);
        let v = self
            .call(
                reqwest::Method::GET,
                "/v2/zones",
                &[("type", "public"), ("name", &fqdn)],
                None,
            )
            .await?;
        // The name is matched loosely by the API: take the exact one.
        let id = v["zones"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|z| {
                z["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&fqdn))
            })
            .and_then(|z| z["id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                NotifyError::permanent(format!(
                    "Huawei Cloud DNS: no public zone {} for this key",
                    self.site.zone
                ))
            })?;
        *self.zone_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.clone());
        Ok(id)
    }

    fn record_body(&self, kind: &str, address: &str) -> Value {
        json!({
            "name": format!("{}.", self.site.name),
            "type": kind,
            "ttl": self.site.ttl,
            "records": [address],
            "description": cloud::remark(),
        })
    }
}

#[async_trait]
impl RecordApi for HuaweiCloudRecord {
    fn provider(&self) -> &'static str {
        "Huawei Cloud DNS"
    }

    fn record_name(&self) -> &str {
        &self.site.name
    }

    async fn list(&self, kind: &str) -> Result<Vec<Found>, NotifyError> {
        let zone = self.zone_id().await?;
        let fqdn = format!("{}.", self.site.name);
        let listed = self
            .call(
                reqwest::Method::GET,
                &format!("/v2.1/zones/{zone}/recordsets"),
                &[("name", &fqdn), ("type", kind), ("search_mode", "equal")],
                None,
            )
            .await;
        let v = match listed {
            Ok(v) => v,
            Err(e) => {
                // The zone may be gone and made again: look its id up afresh next time.
                *self.zone_id.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return Err(e);
            }
        };
        let sets = v["recordsets"].as_array().cloned().unwrap_or_default();
        Ok(sets
            .iter()
            .filter(|r| {
                r["type"] == kind
                    && r["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&fqdn))
            })
            .map(|r| Found {
                id: r["id"].as_str().unwrap_or_default().to_owned(),
                values: r["records"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                ours: r["description"]
                    .as_str()
                    .is_some_and(|c| c.contains(super::MARKER)),
            })
            .collect())
    }

    async fn create(&self, kind: &str, address: &str) -> Result<(), NotifyError> {
        let zone = self.zone_id().await?;
        let body = self.record_body(kind, address);
        let path = format!("/v2.1/zones/{zone}/recordsets");
        self.call(reqwest::Method::POST, &path, &[], Some(body))
            .await
            .map(drop)
    }

    async fn update(&self, found: &Found, kind: &str, address: &str) -> Result<(), NotifyError> {
        let zone = self.zone_id().await?;
        let body = self.record_body(kind, address);
        let path = format!("/v2.1/zones/{zone}/recordsets/{}", encode(&found.id));
        self.call(reqwest::Method::PUT, &path, &[], Some(body))
            .await
            .map(drop)
    }
}

cloud::site_notifier!(HuaweiCloudRecord);
