//! `[sources]` and `[[sources.list]]`: which services are asked, how their answers are
//! combined, and each kind's keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::{
    AnswerFormat, DnsIpSource, HttpIpSource, IpSource, LocalInterfaceSource, SourceSet, Strategy,
};
use serde::Deserialize;

use super::KeyError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SourcesConfig {
    strategy: Option<String>,
    quorum: Option<usize>,
    #[serde(with = "humantime_serde")]
    timeout: Option<Duration>,
    list: Vec<SourceEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SourceEntry {
    kind: String,
    name: Option<String>,
    url: Option<String>,
    allow_non_global: bool,
    /// Extra CA certificates (PEM) for an HTTPS source, e.g. a router's own CA.
    ca_file: Option<PathBuf>,
    provider: Option<String>,
    server: Option<String>,
    server_v6: Option<String>,
    target: Option<String>,
    target_v6: Option<String>,
}

impl SourcesConfig {
    /// The source set: the listed sources (the public services when none is listed), the
    /// strategy, the quorum and the timeout.
    pub(super) fn build(self) -> Result<SourceSet, KeyError> {
        let strategy = match self.strategy.as_deref() {
            None | Some("quorum") => Strategy::Quorum,
            Some("first") => Strategy::First,
            Some("fallback") => Strategy::Fallback,
            Some(other) => {
                return Err(KeyError::new(
                    "sources.strategy",
                    format!("{other:?}: expected \"quorum\", \"first\" or \"fallback\""),
                ));
            }
        };
        let mut list: Vec<Arc<dyn IpSource>> = Vec::new();
        for (i, entry) in self.list.iter().enumerate() {
            list.push(source(entry).map_err(|(key, message)| {
                KeyError::new(format!("sources.list[{i}].{key}"), message)
            })?);
        }
        if list.is_empty() {
            list = HttpIpSource::public_defaults()
                .map_err(|e| KeyError::new("sources.list", e.to_string()))?;
        }
        let mut sources = SourceSet::new(list)
            .strategy(strategy)
            .timeout(self.timeout.unwrap_or(Duration::from_secs(5)));
        if let Some(q) = self.quorum {
            sources = sources.quorum(q);
        }
        Ok(sources)
    }
}

fn parse_addr(key: &'static str, value: &str) -> Result<SocketAddr, (&'static str, String)> {
    value.parse().map_err(|_| {
        (
            key,
            format!("{value:?}: expected IP:PORT, e.g. \"127.0.0.1:53\" or \"[::1]:53\""),
        )
    })
}

/// A key set in a `[[sources.list]]` entry that its kind does not use: an error naming it,
/// not a setting silently ignored (`server` on an HTTP source, `url` on a DNS one).
fn check_keys_of_kind(e: &SourceEntry) -> Result<(), (&'static str, String)> {
    let set = [
        ("url", e.url.is_some()),
        ("ca_file", e.ca_file.is_some()),
        ("allow_non_global", e.allow_non_global),
        ("provider", e.provider.is_some()),
        ("server", e.server.is_some()),
        ("server_v6", e.server_v6.is_some()),
        ("target", e.target.is_some()),
        ("target_v6", e.target_v6.is_some()),
        ("name", e.name.is_some()),
    ];
    let used: &[&str] = match e.kind.as_str() {
        "http" | "cloudflare-trace" => &["url", "ca_file", "allow_non_global", "name"],
        "dns" => &["provider", "server", "server_v6", "name"],
        "local" => &["target", "target_v6"],
        // An unknown kind is reported as such.
        _ => return Ok(()),
    };
    match set.iter().find(|(key, on)| *on && !used.contains(key)) {
        Some((key, _)) => Err((
            key,
            format!(
                "not a key of kind = {:?} (its keys: {})",
                e.kind,
                used.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn source(e: &SourceEntry) -> Result<Arc<dyn IpSource>, (&'static str, String)> {
    check_keys_of_kind(e)?;
    let build = |b: ip_monitor_core::source::HttpIpSourceBuilder| {
        let mut b = match &e.name {
            Some(n) => b.name(n.clone()),
            None => b,
        };
        if let Some(path) = &e.ca_file {
            let pem = std::fs::read(path)
                .map_err(|err| ("ca_file", format!("cannot read {}: {err}", path.display())))?;
            b = b.add_root_certificates(pem);
        }
        b.allow_non_global(e.allow_non_global)
            .build()
            .map_err(|err| ("url", err.to_string()))
    };
    Ok(match e.kind.as_str() {
        "http" => {
            let url = e
                .url
                .clone()
                .ok_or(("url", "required for kind = \"http\"".to_owned()))?;
            Arc::new(build(HttpIpSource::builder(url))?)
        }
        "cloudflare-trace" => {
            let url = e
                .url
                .clone()
                .unwrap_or_else(|| "https://one.one.one.one/cdn-cgi/trace".to_owned());
            Arc::new(build(
                HttpIpSource::builder(url).format(AnswerFormat::CloudflareTrace),
            )?)
        }
        "dns" => {
            let mut s = match e.provider.as_deref() {
                Some("opendns") => DnsIpSource::opendns(),
                Some("cloudflare") => DnsIpSource::cloudflare(),
                Some("google") => DnsIpSource::google(),
                other => {
                    return Err((
                        "provider",
                        format!("{other:?}: expected \"opendns\", \"cloudflare\" or \"google\""),
                    ));
                }
            };
            if let Some(server) = &e.server {
                s = s.server_v4(parse_addr("server", server)?);
            }
            if let Some(server) = &e.server_v6 {
                s = s.server_v6(parse_addr("server_v6", server)?);
            }
            if let Some(name) = &e.name {
                s = s.name(name.clone());
            }
            Arc::new(s)
        }
        "local" => {
            let mut s = LocalInterfaceSource::new();
            if let Some(t) = &e.target {
                s = s.target_v4(parse_addr("target", t)?);
            }
            if let Some(t) = &e.target_v6 {
                s = s.target_v6(parse_addr("target_v6", t)?);
            }
            Arc::new(s)
        }
        other => {
            return Err((
                "kind",
                format!("{other:?}: expected \"http\", \"cloudflare-trace\", \"dns\" or \"local\""),
            ));
        }
    })
}
