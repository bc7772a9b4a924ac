//! `[sources]` and `[[sources.list]]`: which services are asked, how their answers are
//! combined, and each kind's keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::{
    AnswerFormat, DnsIpSource, HttpIpSource, IpSource, LocalInterfaceSource, RouterSource,
    SourceSet, Strategy, UpnpSource,
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
    /// `kind = "interface"`: the interface (default: the default route's).
    interface: Option<String>,
    /// `kind = "interface"`: "stable" (default) or "temporary" IPv6 addresses.
    prefer: Option<String>,
    /// `kind = "command"`: the program and its arguments.
    command: Option<Vec<String>>,
    /// `kind = "natpmp"` and `"pcp"`: "auto" (the default route's gateway) or an address.
    gateway: Option<String>,
}

impl SourcesConfig {
    /// The source set: the listed sources (the public services when none is listed), the
    /// strategy, the quorum and the timeout.
    pub(super) fn build(self) -> Result<(SourceSet, Vec<RouterSource>), KeyError> {
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
        let mut routers = Vec::new();
        for (i, entry) in self.list.iter().enumerate() {
            let at = |(key, message): (&str, String)| {
                KeyError::new(format!("sources.list[{i}].{key}"), message)
            };
            if let Some(router) = router(entry).map_err(at)? {
                routers.push(router.clone());
                list.push(Arc::new(router));
            } else {
                list.push(source(entry).map_err(at)?);
            }
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
        Ok((sources, routers))
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
        ("interface", e.interface.is_some()),
        ("prefer", e.prefer.is_some()),
        ("command", e.command.is_some()),
        ("gateway", e.gateway.is_some()),
    ];
    let used: &[&str] = match e.kind.as_str() {
        "http" | "cloudflare-trace" => &["url", "ca_file", "allow_non_global", "name"],
        "dns" => &["provider", "server", "server_v6", "name"],
        "local" => &["target", "target_v6"],
        "interface" => &["interface", "prefer"],
        "command" => &["command", "name"],
        "natpmp" | "pcp" => &["gateway", "name"],
        "upnp" => &["url", "name"],
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
        "dns" => dns(e)?,
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
        "interface" => interface(e)?,
        "command" => command(e)?,
        "upnp" => upnp(e)?,
        other => {
            return Err((
                "kind",
                format!(
                    "{other:?}: expected \"http\", \"cloudflare-trace\", \"dns\", \"local\", \
                     \"interface\", \"natpmp\", \"pcp\", \"upnp\" or \"command\""
                ),
            ));
        }
    })
}

#[cfg(target_os = "linux")]
fn interface(e: &SourceEntry) -> Result<Arc<dyn IpSource>, (&'static str, String)> {
    use ip_monitor_core::{InterfaceSource, Prefer};
    let mut s = InterfaceSource::new();
    if let Some(name) = &e.interface {
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
            return Err((
                "interface",
                format!("{name:?}: expected an interface name such as \"ppp0\" or \"eth0\""),
            ));
        }
        s = s.interface(name.clone());
    }
    s = s.prefer(match e.prefer.as_deref() {
        None | Some("stable") => Prefer::Stable,
        Some("temporary") => Prefer::Temporary,
        Some(other) => {
            return Err((
                "prefer",
                format!("{other:?}: expected \"stable\" or \"temporary\""),
            ));
        }
    });
    Ok(Arc::new(s))
}

#[cfg(not(target_os = "linux"))]
fn interface(_: &SourceEntry) -> Result<Arc<dyn IpSource>, (&'static str, String)> {
    Err((
        "kind",
        "\"interface\" reads the kernel's addresses over rtnetlink, which only Linux has: \
         use kind = \"local\" here"
            .to_owned(),
    ))
}

fn dns(e: &SourceEntry) -> Result<Arc<dyn IpSource>, (&'static str, String)> {
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
    Ok(Arc::new(s))
}

fn command(e: &SourceEntry) -> Result<Arc<dyn IpSource>, (&'static str, String)> {
    let argv = e.command.clone().ok_or((
        "command",
        "required for kind = \"command\": the program and its arguments, e.g. \
         [\"/usr/local/bin/wan-address\", \"--wan\"]"
            .to_owned(),
    ))?;
    let s = ip_monitor_core::CommandIpSource::new(argv)
        .map_err(|err| ("command", err.to_string_without_field()))?;
    Ok(Arc::new(match &e.name {
        Some(name) => s.name(name.clone()),
        None => s,
    }))
}

/// A NAT-PMP or PCP source (`None` for other kinds): the binary also listens for its
/// router's announcements.
fn router(e: &SourceEntry) -> Result<Option<RouterSource>, (&'static str, String)> {
    let mut s = match e.kind.as_str() {
        "natpmp" => RouterSource::nat_pmp(),
        "pcp" => RouterSource::pcp(),
        _ => return Ok(None),
    };
    check_keys_of_kind(e)?;
    match e.gateway.as_deref() {
        None | Some("auto") => {}
        Some(address) => {
            let ip = address.parse().map_err(|_| {
                (
                    "gateway",
                    format!("{address:?}: expected \"auto\" or the router's address, e.g. \"192.168.1.1\""),
                )
            })?;
            s = s.gateway(ip);
        }
    }
    if let Some(name) = &e.name {
        s = s.name(name.clone());
    }
    Ok(Some(s))
}

fn upnp(e: &SourceEntry) -> Result<Arc<dyn IpSource>, (&'static str, String)> {
    let mut s = UpnpSource::new().map_err(|err| ("kind", err.to_string()))?;
    if let Some(url) = &e.url {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err((
                "url",
                format!(
                    "{url:?}: expected the device description's URL, e.g. \
                         \"http://192.168.1.1:5000/rootDesc.xml\""
                ),
            ));
        }
        s = s.url(url.clone());
    }
    if let Some(name) = &e.name {
        s = s.name(name.clone());
    }
    Ok(Arc::new(s))
}
