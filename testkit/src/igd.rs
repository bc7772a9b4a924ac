//! A UPnP Internet Gateway Device: the device description, the WANIPConnection:1 control
//! point answering `GetExternalIPAddress` as the UPnP IGD spec lays it out (and a SOAP fault
//! for any other action or a wrong SOAPAction), and an SSDP responder for the LAN search.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::{Behavior, HttpServer};

/// The fake gateway.
#[derive(Debug)]
pub struct Igd {
    /// The HTTP server of its description and control point.
    pub http: HttpServer,
    external: Arc<Mutex<String>>,
    ssdp: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Igd {
    fn drop(&mut self) {
        if let Some(task) = &self.ssdp {
            task.abort();
        }
    }
}

const SERVICE: &str = "urn:schemas-upnp-org:service:WANIPConnection:1";

fn description() -> String {
    format!(
        r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>Test router</friendlyName>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>
<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId>
<controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL><SCPDURL>/L3F.xml</SCPDURL>
</service></serviceList>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>
<controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL><SCPDURL>/WANCfg.xml</SCPDURL>
</service></serviceList>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service>
<serviceType>{SERVICE}</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>"#
    )
}

fn fault(code: u16, text: &str) -> (u16, String) {
    (
        500,
        format!(
            r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>{code}</errorCode><errorDescription>{text}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>"#
        ),
    )
}

fn control(head: &str, body: &[u8], external: &str) -> (u16, String) {
    let action = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("soapaction")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    let body = String::from_utf8_lossy(body);
    if action != format!("\"{SERVICE}#GetExternalIPAddress\"")
        || !body.contains("GetExternalIPAddress")
    {
        return fault(401, "Invalid Action");
    }
    (
        200,
        format!(
            r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="{SERVICE}"><NewExternalIPAddress>{external}</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>"#
        ),
    )
}

impl Igd {
    /// Serve on `bind` (e.g. "192.168.7.1:0") with `external` as the external address.
    pub async fn start(bind: &str, external: &str) -> Igd {
        let external = Arc::new(Mutex::new(external.to_owned()));
        let shared = Arc::clone(&external);
        let judge = Arc::new(move |head: &str, body: &[u8]| {
            let path = head.split_whitespace().nth(1).unwrap_or("");
            match (head.split_whitespace().next(), path) {
                (Some("GET"), "/rootDesc.xml") => (200, description()),
                (Some("POST"), "/ctl/IPConn") => control(head, body, &shared.lock().unwrap()),
                _ => (404, String::new()),
            }
        });
        let http = HttpServer::start(bind, Behavior::Judge(judge)).await;
        Igd {
            http,
            external,
            ssdp: None,
        }
    }

    /// The description's URL.
    pub fn description_url(&self) -> String {
        format!("http://{}/rootDesc.xml", self.http.addr)
    }

    /// Answer with `external` from now on.
    pub fn set_external(&self, external: &str) {
        *self.external.lock().unwrap() = external.to_owned();
    }

    /// Answer SSDP searches for a gateway sent to 239.255.255.250:1900 (on this namespace's
    /// interfaces), as a router on the LAN does.
    pub async fn answer_searches(&mut self) {
        let std = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 1900)).unwrap();
        std.join_multicast_v4(&Ipv4Addr::new(239, 255, 255, 250), &Ipv4Addr::UNSPECIFIED)
            .unwrap();
        std.set_nonblocking(true).unwrap();
        let socket = tokio::net::UdpSocket::from_std(std).unwrap();
        let location = self.description_url();
        self.ssdp = Some(tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let search = String::from_utf8_lossy(&buf[..n]);
                if !search.starts_with("M-SEARCH") {
                    continue;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n\
                     ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
                     USN: uuid:test-router::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
                     EXT:\r\nSERVER: Linux UPnP/1.1 test-router/1.0\r\nLOCATION: {location}\r\n\r\n"
                );
                let _ = socket.send_to(answer.as_bytes(), from).await;
            }
        }));
    }
}
