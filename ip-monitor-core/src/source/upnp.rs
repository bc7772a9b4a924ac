//! The external address from a UPnP Internet Gateway Device: `GetExternalIPAddress` on its
//! WANIPConnection:2, WANIPConnection:1 or WANPPPConnection:1 service, the device found by
//! SSDP on the LAN or given by the URL of its description.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;

use super::{IpSource, SourceError};
use crate::address::Family;

/// The services that answer `GetExternalIPAddress`, the newest first.
const SERVICES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

/// The most bytes read of a description, a SOAP answer or an SSDP answer.
const MAX_BYTES: usize = 64 * 1024;

/// Asks a UPnP IGD router for its external address (IPv4). Without a description URL it
/// searches the LAN by SSDP (an `M-SEARCH` for an InternetGatewayDevice, answers taken for
/// [`SEARCH_WAIT`](UpnpSource::SEARCH_WAIT)), then reads the device's description, finds its
/// WAN connection service and calls `GetExternalIPAddress`. A router behind another NAT
/// answers with a private or CGNAT address, which is rejected as any non-global answer.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{Family, IpSource, UpnpSource};
/// let router = UpnpSource::new().unwrap().url("http://192.168.1.1:5000/rootDesc.xml");
/// println!("{:?}", router.fetch(Family::V4).await);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct UpnpSource {
    client: reqwest::Client,
    url: Option<String>,
    search: SocketAddr,
    name: String,
}

impl UpnpSource {
    /// SSDP's multicast group and port, where the search goes by default.
    pub const SSDP: SocketAddr =
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 255, 255, 250)), 1900);

    /// How long SSDP answers are awaited.
    pub const SEARCH_WAIT: Duration = Duration::from_secs(2);

    /// Search the LAN for the router. Fails when the HTTP client cannot be built.
    pub fn new() -> Result<Self, SourceError> {
        let client = super::client_builder(&[], Duration::from_secs(5))?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SourceError::Transport(Box::new(e)))?;
        Ok(UpnpSource {
            client,
            url: None,
            search: Self::SSDP,
            name: "upnp".to_owned(),
        })
    }

    /// Read this device description (`http://192.168.1.1:5000/rootDesc.xml`) instead of
    /// searching.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Send the SSDP search here instead of the multicast group (a router that answers
    /// unicast searches).
    pub fn search_at(mut self, target: SocketAddr) -> Self {
        self.search = target;
        self
    }

    /// Name it in logs and status (default `upnp`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    async fn get(&self, url: &str) -> Result<String, SourceError> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| SourceError::Transport(Box::new(e.without_url())))?;
        text(response).await
    }
}

/// The body of `response`, at most [`MAX_BYTES`]; an error status is an error.
async fn text(mut response: reqwest::Response) -> Result<String, SourceError> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SourceError::Transport(Box::new(e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(SourceError::TooLarge { limit: MAX_BYTES });
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        // A SOAP fault says why (e.g. 501 ActionFailed): keep its description.
        let fault = String::from_utf8_lossy(&body);
        let why = element_text(&fault, "errorDescription").unwrap_or_default();
        return Err(if why.is_empty() {
            SourceError::Status {
                status: status.as_u16(),
            }
        } else {
            SourceError::Router(format!("UPnP: HTTP {}: {why}", status.as_u16()))
        });
    }
    String::from_utf8(body).map_err(|e| SourceError::invalid(e.as_bytes()))
}

/// The text of the first element called `name` (any namespace) in `xml`.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.descendants()
        .find(|n| n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or_default().trim().to_owned())
}

/// The WAN connection service of a device description: its type and absolute control URL.
fn find_service(description: &str, location: &str) -> Result<(String, String), SourceError> {
    let doc = roxmltree::Document::parse(description).map_err(|e| {
        SourceError::Router(format!("UPnP: the device description is not XML: {e}"))
    })?;
    let child = |node: roxmltree::Node<'_, '_>, name: &str| {
        node.children()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .map(str::trim)
            .map(str::to_owned)
    };
    let services: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "service")
        .filter_map(|s| Some((child(s, "serviceType")?, child(s, "controlURL")?)))
        .collect();
    let (kind, control) = SERVICES
        .iter()
        .find_map(|wanted| services.iter().find(|(kind, _)| kind == wanted))
        .ok_or_else(|| {
            SourceError::Router(
                "UPnP: the device has no WANIPConnection or WANPPPConnection service".to_owned(),
            )
        })?;
    let base = doc
        .descendants()
        .find(|n| n.tag_name().name() == "URLBase")
        .and_then(|n| n.text())
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or(location);
    let base = reqwest::Url::parse(base)
        .map_err(|e| SourceError::Router(format!("UPnP: bad description URL: {e}")))?;
    let control = base
        .join(control)
        .map_err(|e| SourceError::Router(format!("UPnP: bad controlURL {control:?}: {e}")))?;
    Ok((kind.clone(), control.to_string()))
}

/// The SOAP request for `GetExternalIPAddress` on `service`.
fn soap_request(service: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\r\n\
         <s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">\
         <s:Body><u:GetExternalIPAddress xmlns:u=\"{service}\"></u:GetExternalIPAddress>\
         </s:Body></s:Envelope>\r\n"
    )
}

/// The `LOCATION` of the first SSDP answer that names an InternetGatewayDevice or one of
/// its WAN services.
fn location_of(answer: &str) -> Option<String> {
    let mut lines = answer.lines();
    if !lines.next()?.starts_with("HTTP/1.1 200") {
        return None;
    }
    let mut location = None;
    let mut relevant = false;
    for line in lines {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "location" => location = Some(value.to_owned()),
            "st" => {
                relevant = value.contains("InternetGatewayDevice")
                    || value.contains("WANIPConnection")
                    || value.contains("WANPPPConnection");
            }
            _ => {}
        }
    }
    location.filter(|_| relevant)
}

/// Search `target` by SSDP; the first gateway's description URL.
async fn search(target: SocketAddr) -> Result<String, SourceError> {
    let transport = |e: std::io::Error| SourceError::Transport(Box::new(e));
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .map_err(transport)?;
    let request = format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: {target}\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\n\
         ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n"
    );
    socket
        .send_to(request.as_bytes(), target)
        .await
        .map_err(transport)?;
    let mut buf = vec![0u8; 2048];
    let deadline = tokio::time::Instant::now() + UpnpSource::SEARCH_WAIT;
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
        let Ok(received) = received else {
            return Err(SourceError::NoAddress(
                "UPnP: no Internet Gateway Device answered the search".to_owned(),
            ));
        };
        let (n, _) = received.map_err(transport)?;
        if let Some(location) = location_of(&String::from_utf8_lossy(&buf[..n])) {
            return Ok(location);
        }
    }
}

#[async_trait]
impl IpSource for UpnpSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
        if family == Family::V6 {
            return Err(SourceError::Unsupported { family });
        }
        let location = match &self.url {
            Some(url) => url.clone(),
            None => search(self.search).await?,
        };
        let description = self.get(&location).await?;
        let (service, control) = find_service(&description, &location)?;
        let response = self
            .client
            .post(control)
            .header("Content-Type", "text/xml; charset=\"utf-8\"")
            .header("SOAPAction", format!("\"{service}#GetExternalIPAddress\""))
            .body(soap_request(&service))
            .send()
            .await
            .map_err(|e| SourceError::Transport(Box::new(e.without_url())))?;
        let answer = text(response).await?;
        let address = element_text(&answer, "NewExternalIPAddress")
            .ok_or_else(|| SourceError::invalid(answer.as_bytes()))?;
        super::parse_plain(address.as_bytes(), family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wan_service_and_its_control_url_are_found() {
        let description = r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device>
  <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
  <deviceList><device><deviceList><device>
    <serviceList>
      <service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>
        <controlURL>/ctl/PPP</controlURL></service>
      <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
        <controlURL>/ctl/IPConn</controlURL></service>
    </serviceList>
  </device></deviceList></device></deviceList>
</device></root>"#;
        let (kind, control) =
            find_service(description, "http://192.168.1.1:5000/rootDesc.xml").unwrap();
        assert_eq!(kind, SERVICES[1]);
        assert_eq!(control, "http://192.168.1.1:5000/ctl/IPConn");
        assert!(find_service("<root/>", "http://192.168.1.1/").is_err());
    }

    #[test]
    fn ssdp_answers_give_the_gateways_location() {
        let answer = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n\
                      ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
                      Location: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n";
        assert_eq!(
            location_of(answer).unwrap(),
            "http://192.168.1.1:5000/rootDesc.xml"
        );
        let printer = answer.replace("InternetGatewayDevice", "Printer");
        assert_eq!(location_of(&printer), None);
        assert_eq!(location_of("NOTIFY * HTTP/1.1\r\n\r\n"), None);
    }
}
