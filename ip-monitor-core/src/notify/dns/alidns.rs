//! A DNS record kept on the current address through Alibaba Cloud DNS (the Alidns API,
//! version 2015-01-09), as a notifier: give it to a [`ChannelRouter`](crate::ChannelRouter)
//! as the notifier of a [`Recipient::dns_record`](crate::Recipient::dns_record), and each
//! change updates the record once through the outbox (retried, superseded by a newer change,
//! fenced by the lease).
//!
//! Every request is signed with ACS3-HMAC-SHA256 under an AccessKey pair. Only a record
//! whose remark holds [`MARKER`](super::MARKER) is changed; one without it is left alone and
//! the delivery fails, saying so. Without any record of the name, type and line, one is
//! added and marked. After each write the record is read back. Test notices do not touch DNS.
//!
//! ```
//! use ip_monitor_core::Family;
//! use ip_monitor_core::notify::dns::alidns::AlidnsRecord;
//!
//! let record = AlidnsRecord::new("example.com", "www.example.com", "LTAI-example", "Zq-secret-value")
//!     .unwrap()
//!     .ttl(600)
//!     .families([Family::V4, Family::V6]);
//! assert_eq!(record.name(), "www.example.com");
//! assert!(!format!("{record:?}").contains("Zq-secret-value"));
//! ```

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use serde_json::Value;

use super::cloud::{self, Found, RecordApi, Site, Utc};
use crate::address::Family;
use crate::error::InvalidSetting;
use crate::notify::NotifyError;
use crate::notify::api::exchange;

/// Alibaba Cloud DNS's endpoint.
pub const ENDPOINT: &str = "https://alidns.aliyuncs.com";

const VERSION: &str = "2015-01-09";

/// Keeps the A and/or AAAA record of one name, on one resolution line, on the current
/// address.
#[derive(Clone)]
pub struct AlidnsRecord {
    site: Site,
    key_id: String,
    secret: String,
    line: String,
}

impl fmt::Debug for AlidnsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.site
            .fields(&mut f.debug_struct("AlidnsRecord"))
            .field("access_key_id", &self.key_id)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl AlidnsRecord {
    cloud::site_methods!("The record's TTL in seconds (the free edition allows 600 and more).");

    /// The record `name` in the domain `zone` (e.g. `www.example.com` in `example.com`),
    /// written with the AccessKey pair `access_key_id` / `access_key_secret`; A records (v4),
    /// TTL 600, the line `default`.
    pub fn new(
        zone: impl Into<String>,
        name: impl Into<String>,
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
    ) -> Result<Self, InvalidSetting> {
        Ok(AlidnsRecord {
            site: Site::new(zone.into(), name.into(), ENDPOINT.to_owned(), 600)?,
            key_id: access_key_id.into(),
            secret: access_key_secret.into(),
            line: "default".to_owned(),
        })
    }

    /// The resolution line the record answers on (`default` unless the zone splits by
    /// carrier or region).
    pub fn line(mut self, line: impl Into<String>) -> Self {
        self.line = line.into();
        self
    }

    /// The `Authorization` header of a `POST /` with `query` and `headers` (all of them
    /// signed, in order) and an empty body.
    fn authorization(&self, query: &str, headers: &[(&str, String)]) -> String {
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed = headers
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(";");
        let payload = cloud::sha256_hex(b"");
        let canonical = format!("POST\n/\n{query}\n{canonical_headers}\n{signed}\n{payload}");
        let to_sign = format!(
            "ACS3-HMAC-SHA256\n{}",
            cloud::sha256_hex(canonical.as_bytes())
        );
        let signature = cloud::hex(&cloud::hmac_sha256(
            self.secret.as_bytes(),
            to_sign.as_bytes(),
        ));
        format!(
            "ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed},Signature={signature}",
            self.key_id
        )
    }

    /// Call `action` with `params`, signed; the answer's JSON.
    async fn call(&self, action: &str, params: &[(&str, String)]) -> Result<Value, NotifyError> {
        let base = self.site.base()?;
        let query = cloud::canonical_query(params);
        let payload = cloud::sha256_hex(b"");
        let headers = [
            ("host", cloud::host_header(&base)),
            ("x-acs-action", action.to_owned()),
            ("x-acs-content-sha256", payload.clone()),
            ("x-acs-date", Utc::at(SystemTime::now()).iso8601()),
            (
                "x-acs-signature-nonce",
                format!("{:032x}", fastrand::u128(..)),
            ),
            ("x-acs-version", VERSION.to_owned()),
        ];
        let mut request = self
            .site
            .client
            .post(format!("{base}?{query}"))
            .header("authorization", self.authorization(&query, &headers));
        for (k, v) in &headers {
            request = request.header(*k, v);
        }
        let (status, text) = exchange(request).await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = v["Code"].as_str();
        if status.is_success() && code.is_none() && v.is_object() {
            return Ok(v);
        }
        let why = match code {
            Some(code) => format!(
                "Alibaba Cloud DNS answered {status} to {action}: {code}: {}",
                v["Message"].as_str().unwrap_or("")
            ),
            None => {
                let shown: String = text.chars().take(200).collect();
                format!("Alibaba Cloud DNS answered {status} to {action}: {shown}")
            }
        };
        let busy = code.is_some_and(|c| {
            c.starts_with("Throttling")
                || c == "ServiceUnavailable"
                || c.starts_with("InternalError")
        });
        if busy || status.as_u16() == 429 || status.is_server_error() {
            Err(NotifyError::transient(why))
        } else {
            // A wrong key or signature, a key without the permission, a bad parameter.
            Err(NotifyError::permanent(why))
        }
    }

    fn base_params(&self, kind: &str) -> Vec<(&'static str, String)> {
        vec![
            ("RR", self.site.label.clone()),
            ("Type", kind.to_owned()),
            ("TTL", self.site.ttl.to_string()),
            ("Line", self.line.clone()),
        ]
    }
}

#[async_trait]
impl RecordApi for AlidnsRecord {
    fn provider(&self) -> &'static str {
        "Alibaba Cloud DNS"
    }

    fn record_name(&self) -> &str {
        &self.site.name
    }

    async fn list(&self, kind: &str) -> Result<Vec<Found>, NotifyError> {
        let v = self
            .call(
                "DescribeSubDomainRecords",
                &[
                    ("SubDomain", self.site.name.clone()),
                    ("DomainName", self.site.zone.clone()),
                    ("Type", kind.to_owned()),
                    ("Line", self.line.clone()),
                    ("PageSize", "100".to_owned()),
                ],
            )
            .await?;
        let records = v["DomainRecords"]["Record"].as_array().cloned();
        Ok(records
            .unwrap_or_default()
            .iter()
            .filter(|r| {
                r["Type"] == kind
                    && r["Line"].as_str().is_none_or(|l| l == self.line)
                    && r["RR"]
                        .as_str()
                        .is_some_and(|rr| rr.eq_ignore_ascii_case(&self.site.label))
            })
            .map(|r| Found {
                id: json_id(&r["RecordId"]),
                values: vec![r["Value"].as_str().unwrap_or_default().to_owned()],
                ours: r["Remark"]
                    .as_str()
                    .is_some_and(|c| c.contains(super::MARKER)),
            })
            .collect())
    }

    async fn create(&self, kind: &str, address: &str) -> Result<(), NotifyError> {
        let mut params = self.base_params(kind);
        params.push(("DomainName", self.site.zone.clone()));
        params.push(("Value", address.to_owned()));
        let added = self.call("AddDomainRecord", &params).await?;
        let id = json_id(&added["RecordId"]);
        // The remark is its own call: a record left without it would be refused as foreign
        // on the retry, so one that cannot be marked is removed again.
        let marked = self
            .call(
                "UpdateDomainRecordRemark",
                &[("RecordId", id.clone()), ("Remark", cloud::remark())],
            )
            .await;
        if let Err(e) = marked {
            if let Err(undo) = self.call("DeleteDomainRecord", &[("RecordId", id)]).await {
                tracing::warn!(
                    "Alibaba Cloud DNS: the unmarked {kind} record of {} stays: {undo}",
                    self.site.name
                );
            }
            return Err(e);
        }
        Ok(())
    }

    async fn update(&self, found: &Found, kind: &str, address: &str) -> Result<(), NotifyError> {
        let mut params = self.base_params(kind);
        params.push(("RecordId", found.id.clone()));
        params.push(("Value", address.to_owned()));
        self.call("UpdateDomainRecord", &params).await.map(drop)
    }
}

/// An id the API gives as a string (or, in older answers, a number).
fn json_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

cloud::site_notifier!(AlidnsRecord);
