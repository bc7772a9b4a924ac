//! What the cloud DNS providers signed with an access key share: the hashes and MACs of
//! their signatures, the UTC timestamps they carry, and the one way a record is kept —
//! read the record set, touch only the one marked as ours, write, and read it back.

// Each provider uses its own part of what is here.
#![cfg_attr(
    not(all(feature = "alidns", feature = "dnspod", feature = "huaweicloud")),
    allow(dead_code)
)]

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::address::Family;
use crate::error::InvalidSetting;
use crate::notice::Notice;
use crate::notify::{NotifyError, SendPermit, Sent};

use super::MARKER;

pub(crate) use crate::notify::api::{hex, hmac_sha256};

/// Lower-case hex of the SHA-256 digest of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// A moment in UTC, split into its calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Utc {
    pub(crate) unix: u64,
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

impl Utc {
    /// `at`, on the proleptic Gregorian calendar (days to civil date after Howard
    /// Hinnant's published algorithm).
    pub(crate) fn at(at: SystemTime) -> Utc {
        let unix = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let days = (unix / 86_400) as i64;
        let rem = unix % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            unix,
            year,
            month,
            day,
            hour: (rem / 3_600) as u32,
            minute: (rem % 3_600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// `2026-12-03`.
    pub(crate) fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `2026-12-03T16:44:32Z`.
    pub(crate) fn iso8601(&self) -> String {
        format!(
            "{}T{:02}:{:02}:{:02}Z",
            self.date(),
            self.hour,
            self.minute,
            self.second
        )
    }

    /// `20261203T164432Z`.
    pub(crate) fn basic(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// The host and port of `url` as its `Host` header carries them (the port only when it is
/// not the scheme's default), which the signatures cover.
pub(crate) fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// `params` as a canonical query string: each name and value percent-encoded (RFC 3986),
/// sorted by name (then value), joined with `&`.
pub(crate) fn canonical_query<V: AsRef<str>>(params: &[(&str, V)]) -> String {
    use crate::notify::api::encode;
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (encode(k), encode(v.as_ref())))
        .collect();
    pairs.sort();
    let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join("&")
}

/// The record type of `family`.
pub(crate) fn record_type(family: Family) -> &'static str {
    match family {
        Family::V4 => "A",
        Family::V6 => "AAAA",
    }
}

/// The label of `name` relative to `zone`: `www` for `www.example.com` in `example.com`,
/// `@` for the apex.
pub(crate) fn relative(name: &str, zone: &str) -> String {
    let (name, zone) = (name.trim_end_matches('.'), zone.trim_end_matches('.'));
    if name.eq_ignore_ascii_case(zone) {
        return "@".to_owned();
    }
    name[..name.len() - zone.len() - 1].to_owned()
}

/// Whether `name` is `zone` or a name under it (compared without case and final dot).
pub(crate) fn in_zone(name: &str, zone: &str) -> bool {
    let (name, zone) = (
        name.trim_end_matches('.').to_ascii_lowercase(),
        zone.trim_end_matches('.').to_ascii_lowercase(),
    );
    !zone.is_empty() && (name == zone || name.ends_with(&format!(".{zone}")))
}

/// The remark a record of ours is written with.
pub(crate) fn remark() -> String {
    format!("{MARKER}; do not edit by hand")
}

/// What every cloud record keeps: where it calls, the name in its zone, its TTL and its
/// families.
#[derive(Clone)]
pub(crate) struct Site {
    pub(crate) endpoint: String,
    /// The zone, without the final dot.
    pub(crate) zone: String,
    /// The record's full name, without the final dot.
    pub(crate) name: String,
    /// The name relative to the zone (`@` for the apex).
    pub(crate) label: String,
    pub(crate) ttl: u32,
    pub(crate) families: Vec<Family>,
    pub(crate) client: reqwest::Client,
}

impl Site {
    /// `name` in `zone`, called at `endpoint`; A records, `ttl`.
    pub(crate) fn new(
        zone: String,
        name: String,
        endpoint: String,
        ttl: u32,
    ) -> Result<Site, InvalidSetting> {
        if !in_zone(&name, &zone) {
            return Err(InvalidSetting::new(
                "name",
                format!("{name} is not in the zone {zone}"),
            ));
        }
        Ok(Site {
            endpoint,
            label: relative(&name, &zone),
            zone: zone.trim_end_matches('.').to_owned(),
            name: name.trim_end_matches('.').to_owned(),
            ttl,
            families: vec![Family::V4],
            client: crate::notify::api::client(std::time::Duration::from_secs(15))?,
        })
    }

    /// `url` as the endpoint, without a final slash.
    pub(crate) fn set_endpoint(&mut self, url: String) {
        self.endpoint = url.trim_end_matches('/').to_owned();
    }

    /// The fields of a `Debug` of the record, secrets left out.
    pub(crate) fn fields<'a, 'b>(
        &self,
        f: &'a mut std::fmt::DebugStruct<'a, 'b>,
    ) -> &'a mut std::fmt::DebugStruct<'a, 'b> {
        f.field("endpoint", &self.endpoint)
            .field("zone", &self.zone)
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .field("families", &self.families)
    }

    /// The endpoint, checked to keep the key off the wire, with a final slash.
    pub(crate) fn base(&self) -> Result<reqwest::Url, NotifyError> {
        crate::notify::api::check_secret_transport(&self.endpoint, "endpoint")
            .map_err(NotifyError::permanent)?;
        reqwest::Url::parse(&format!("{}/", self.endpoint))
            .map_err(|e| NotifyError::permanent(format!("endpoint: {e}")))
    }
}

/// The builder methods every cloud record has, on its `site`; `$ttl` documents `ttl`.
macro_rules! site_methods {
    ($ttl:literal) => {
        /// Another endpoint (a regional one, a proxy, a test server): `https`, or `http` to a
        /// loopback address only; any other is refused when a call is made.
        pub fn endpoint(mut self, url: impl Into<String>) -> Self {
            self.site.set_endpoint(url.into());
            self
        }

        #[doc = $ttl]
        pub fn ttl(mut self, ttl: u32) -> Self {
            self.site.ttl = ttl;
            self
        }

        /// Which records to keep: A for v4, AAAA for v6.
        pub fn families(mut self, families: impl Into<Vec<Family>>) -> Self {
            self.site.families = families.into();
            self
        }

        /// The record's name.
        pub fn name(&self) -> &str {
            &self.site.name
        }
    };
}
pub(crate) use site_methods;

/// The [`Notifier`](crate::Notifier) of a cloud record: [`send`] through its
/// [`RecordApi`].
macro_rules! site_notifier {
    ($record:ty) => {
        #[async_trait::async_trait]
        impl crate::notify::Notifier for $record {
            async fn send(
                &self,
                notice: &crate::notice::Notice,
                _recipient: &crate::recipients::Recipient,
                permit: &crate::notify::SendPermit,
            ) -> Result<crate::notify::Sent, crate::notify::NotifyError> {
                super::cloud::send(self, &self.site.families, notice, permit).await
            }
        }
    };
}
pub(crate) use site_notifier;

/// Deliver `notice` through `api`, whose record is kept for `families`.
pub(crate) async fn send(
    api: &dyn RecordApi,
    families: &[Family],
    notice: &Notice,
    permit: &SendPermit,
) -> Result<Sent, NotifyError> {
    if !super::takes(&api.record_name(), families, notice, permit)? {
        return Ok(Sent::direct());
    }
    let done = keep(api, notice.address, notice.family).await?;
    tracing::info!("{}: {done}", api.provider());
    Ok(Sent::direct())
}

/// One record (or record set) of the name and type, as the provider lists it.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The provider's id of it.
    pub(crate) id: String,
    /// The addresses it holds.
    pub(crate) values: Vec<String>,
    /// Its remark or description holds [`MARKER`].
    pub(crate) ours: bool,
}

/// The calls a provider's API offers for one name, each a signed request.
#[async_trait]
pub(crate) trait RecordApi: Send + Sync {
    /// The provider's name, for messages.
    fn provider(&self) -> &'static str;
    /// The record's full name, for messages.
    fn record_name(&self) -> &str;
    /// The records of the name and `kind`.
    async fn list(&self, kind: &str) -> Result<Vec<Found>, NotifyError>;
    /// A new record of `kind` holding `address`, marked as ours.
    async fn create(&self, kind: &str, address: &str) -> Result<(), NotifyError>;
    /// `found` of `kind` set to hold `address` only, still marked as ours.
    async fn update(&self, found: &Found, kind: &str, address: &str) -> Result<(), NotifyError>;
}

/// Keep the record of `family` on `address` through `api`: create it if there is none,
/// update ours if it holds anything else, refuse if the only ones there are not ours; then
/// read it back. Returns what was done, in words.
pub(crate) async fn keep(
    api: &dyn RecordApi,
    address: std::net::IpAddr,
    family: Family,
) -> Result<String, NotifyError> {
    let kind = record_type(family);
    let address = address.to_string();
    let (provider, name) = (api.provider(), api.record_name());
    let found = api.list(kind).await?;
    let ours = found.iter().find(|r| r.ours);
    let done = match ours {
        None if !found.is_empty() => {
            return Err(NotifyError::permanent(format!(
                "{provider}: the {kind} record of {name} exists and is not managed by ip-monitor \
                 (its remark lacks \"{MARKER}\"): left alone"
            )));
        }
        None => {
            api.create(kind, &address).await?;
            "created"
        }
        Some(record) if record.values == [address.as_str()] => "already",
        Some(record) => {
            api.update(record, kind, &address).await?;
            "updated"
        }
    };
    let after = api.list(kind).await?;
    let kept = after
        .iter()
        .find(|r| r.ours)
        .is_some_and(|r| r.values == [address.as_str()]);
    if !kept {
        return Err(NotifyError::transient(format!(
            "{provider}: the {kind} record of {name} does not hold {address} after the write"
        )));
    }
    Ok(format!("{kind} {name} = {address} ({done})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn calendar_fields_of_known_moments() {
        let at = |s| Utc::at(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0).iso8601(), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400).date(), "2000-02-29");
        assert_eq!(at(1_796_316_272).basic(), "20261203T164432Z");
        assert_eq!(at(4_107_542_399).iso8601(), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn names_relative_to_their_zone() {
        assert_eq!(relative("www.example.com", "example.com"), "www");
        assert_eq!(relative("Example.com.", "example.com"), "@");
        assert_eq!(relative("a.b.example.com", "example.com."), "a.b");
        assert!(in_zone("WWW.example.com", "example.com"));
        assert!(!in_zone("www.notexample.com", "example.com"));
        assert!(!in_zone("example.com", ""));
    }

    #[test]
    fn queries_sort_by_name_then_value() {
        let params = [("b", "2"), ("a-b", "x y/默"), ("a", "1")];
        assert_eq!(canonical_query(&params), "a=1&a-b=x%20y%2F%E9%BB%98&b=2");
    }

    #[test]
    fn digests_match_published_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 4231, test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
