//! A DNS record kept on the current address through DNSPod (Tencent Cloud API 3.0,
//! version 2021-03-23), as a notifier: give it to a [`ChannelRouter`](crate::ChannelRouter)
//! as the notifier of a [`Recipient::dns_record`](crate::Recipient::dns_record), and each
//! change updates the record once through the outbox (retried, superseded by a newer change,
//! fenced by the lease).
//!
//! Every request is signed with TC3-HMAC-SHA256 under a SecretId / SecretKey pair. Only a
//! record whose remark holds [`MARKER`](super::MARKER) is changed; one without it is left
//! alone and the delivery fails, saying so. Without any record of the name, type and line,
//! one is created with the remark. After each write the record is read back. Test notices
//! do not touch DNS.
//!
//! ```
//! use ip_monitor_core::notify::dns::dnspod::DnspodRecord;
//!
//! let record = DnspodRecord::new("example.com", "example.com", "AKID-example", "Zq-secret-value")
//!     .unwrap()
//!     .record_line("默认");
//! assert_eq!(record.name(), "example.com");
//! assert!(!format!("{record:?}").contains("Zq-secret-value"));
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::cloud::{self, Found, RecordApi, Site, Utc};
use crate::address::Family;
use crate::error::InvalidSetting;
use crate::notify::NotifyError;
use crate::notify::api::exchange;

/// DNSPod's endpoint.
pub const ENDPOINT: &str = "https://dnspod.tencentcloudapi.com";

const VERSION: &str = "2021-03-23";
const SERVICE: &str = "dnspod";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Keeps the A and/or AAAA record of one name, on one record line, on the current address.
#[derive(Clone)]
pub struct DnspodRecord {
    site: Site,
    secret_id: String,
    secret_key: String,
    line: String,
}

impl fmt::Debug for DnspodRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.site
            .fields(&mut f.debug_struct("DnspodRecord"))
            .field("secret_id", &self.secret_id)
            .field("record_line", &self.line)
            .finish_non_exhaustive()
    }
}

impl DnspodRecord {
    cloud::site_methods!("The record's TTL in seconds (the free plan allows 600 and more).");

    /// The record `name` in the domain `zone` (e.g. `www.example.com` in `example.com`),
    /// written with the API key `secret_id` / `secret_key`; A records (v4), TTL 600, the
    /// line `默认` (default).
    pub fn new(
        zone: impl Into<String>,
        name: impl Into<String>,
        secret_id: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<Self, InvalidSetting> {
        Ok(DnspodRecord {
            site: Site::new(zone.into(), name.into(), ENDPOINT.to_owned(), 600)?,
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            line: "默认".to_owned(),
        })
    }

    /// The record line the record answers on (`默认` unless the zone splits by carrier or
    /// region).
    pub fn record_line(mut self, line: impl Into<String>) -> Self {
        self.line = line.into();
        self
    }

    /// The `Authorization` header of a call of `action` with `body` at `timestamp`.
    fn authorization(&self, host: &str, action: &str, body: &str, timestamp: u64) -> String {
        let date = Utc::at(SystemTime::UNIX_EPOCH + Duration::from_secs(timestamp)).date();
        let signed = "content-type;host;x-tc-action";
        let canonical = format!(
            "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\nx-tc-action:{}\n\n{signed}\n{}",
            action.to_ascii_lowercase(),
            cloud::sha256_hex(body.as_bytes())
        );
        let scope = format!("{date}/{SERVICE}/tc3_request");
        let to_sign = format!(
            "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
            cloud::sha256_hex(canonical.as_bytes())
        );
        let key = format!("TC3{}", self.secret_key);
        let k_date = cloud::hmac_sha256(key.as_bytes(), date.as_bytes());
        let k_service = cloud::hmac_sha256(&k_date, SERVICE.as_bytes());
        let k_signing = cloud::hmac_sha256(&k_service, b"tc3_request");
        let signature = cloud::hex(&cloud::hmac_sha256(&k_signing, to_sign.as_bytes()));
        format!(
            "TC3-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            self.secret_id
        )
    }

    /// Call `action` with `body`, signed; the answer's `Response`, or the error's code and
    /// the error (an empty record list is the code `ResourceNotFound.NoDataOfRecord`).
    async fn call(&self, action: &str, body: Value) -> Result<Value, (String, NotifyError)> {
        let fail = |e: NotifyError| (String::new(), e);
        let url = self.site.base().map_err(fail)?;
        let host = cloud::host_header(&url);
        let body = body.to_string();
        let timestamp = Utc::at(SystemTime::now()).unix;
        let request = self
            .site
            .client
            .post(url)
            .header(
                "authorization",
                self.authorization(&host, action, &body, timestamp),
            )
            .header("content-type", CONTENT_TYPE)
            .header("host", &host)
            .header("x-tc-action", action)
            .header("x-tc-timestamp", timestamp.to_string())
            .header("x-tc-version", VERSION)
            .body(body);
        let (status, text) = exchange(request).await.map_err(fail)?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let response = &v["Response"];
        let code = response["Error"]["Code"].as_str();
        if status.is_success() && code.is_none() && response.is_object() {
            return Ok(response.clone());
        }
        let why = match code {
            Some(code) => format!(
                "DNSPod answered {status} to {action}: {code}: {}",
                response["Error"]["Message"].as_str().unwrap_or("")
            ),
            None => {
                let shown: String = text.chars().take(200).collect();
                format!("DNSPod answered {status} to {action}: {shown}")
            }
        };
        let busy = code.is_some_and(|c| {
            c.starts_with("RequestLimitExceeded")
                || c.starts_with("InternalError")
                || c == "ResourceUnavailable"
        });
        let error = if busy || status.as_u16() == 429 || status.is_server_error() {
            NotifyError::transient(why)
        } else {
            // A wrong key or signature, a key without the permission, a bad parameter.
            NotifyError::permanent(why)
        };
        Err((code.unwrap_or_default().to_owned(), error))
    }

    /// The fields a created or modified record is written with.
    fn record_body(&self, kind: &str, address: &str) -> Value {
        json!({
            "Domain": self.site.zone,
            "SubDomain": self.site.label,
            "RecordType": kind,
            "RecordLine": self.line,
            "Value": address,
            "TTL": self.site.ttl,
            "Remark": cloud::remark(),
        })
    }
}

#[async_trait]
impl RecordApi for DnspodRecord {
    fn provider(&self) -> &'static str {
        "DNSPod"
    }

    fn record_name(&self) -> &str {
        &self.site.name
    }

    async fn list(&self, kind: &str) -> Result<Vec<Found>, NotifyError> {
        let body = json!({
            "Domain": self.site.zone,
            "Subdomain": self.site.label,
            "RecordType": kind,
            "RecordLine": self.line,
            "Limit": 100,
        });
        let v = match self.call("DescribeRecordList", body).await {
            Ok(v) => v,
            Err((code, _)) if code == "ResourceNotFound.NoDataOfRecord" => return Ok(Vec::new()),
            Err((_, e)) => return Err(e),
        };
        let records = v["RecordList"].as_array().cloned().unwrap_or_default();
        Ok(records
            .iter()
            .filter(|r| {
                r["Type"] == kind
                    && r["Line"] == self.line.as_str()
                    && r["Name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&self.site.label))
            })
            .map(|r| Found {
                id: r["RecordId"].to_string(),
                values: vec![r["Value"].as_str().unwrap_or_default().to_owned()],
                ours: r["Remark"]
                    .as_str()
                    .is_some_and(|c| c.contains(super::MARKER)),
            })
            .collect())
    }

    async fn create(&self, kind: &str, address: &str) -> Result<(), NotifyError> {
        let body = self.record_body(kind, address);
        self.call("CreateRecord", body)
            .await
            .map(drop)
            .map_err(|(_, e)| e)
    }

    async fn update(&self, found: &Found, kind: &str, address: &str) -> Result<(), NotifyError> {
        let mut body = self.record_body(kind, address);
        let id: u64 = found
            .id
            .parse()
            .map_err(|_| NotifyError::permanent(format!("DNSPod: record id {:?}", found.id)))?;
        body["RecordId"] = json!(id);
        self.call("ModifyRecord", body)
            .await
            .map(drop)
            .map_err(|(_, e)| e)
    }
}

cloud::site_notifier!(DnspodRecord);
