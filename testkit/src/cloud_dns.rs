//! A cloud DNS provider's API on 127.0.0.1 (`testkit/fakes/cloud_dns.py`): Alibaba Cloud
//! DNS, DNSPod or Huawei Cloud DNS, each request's signature recomputed in Python from the
//! provider's published algorithm, the records kept in memory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The fake API, stopped when dropped.
#[derive(Debug)]
pub struct CloudDns {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl CloudDns {
    /// The API of `provider` (`alidns`, `dnspod` or `huaweicloud`) accepting the key
    /// `key_id` with `secret`; zone `example.com`.
    pub fn start(provider: &str, key_id: &str, secret: &str) -> CloudDns {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fakes/cloud_dns.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([provider, key_id, secret])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs testkit/fakes/cloud_dns.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the fake API's port");
        CloudDns { child, port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `{"records": [...], "writes": [...], "rejected": [...]}`.
    pub fn state(&self) -> Value {
        let reply = crate::client::request(self.port, "GET", "/_fake/state", &[], b"").unwrap();
        serde_json::from_slice(&reply.body).unwrap()
    }

    /// The writes so far, as `create A www.example.com 81.2.69.160`, `update …`, `remark …`.
    pub fn writes(&self) -> Vec<String> {
        self.state()["writes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect()
    }

    /// The records of `name` (without the final dot).
    pub fn records_of(&self, name: &str) -> Vec<Value> {
        self.state()["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == name)
            .cloned()
            .collect()
    }

    /// `{"fail": [[status, code], ...]}`, `{"down": bool}` or `{"add": record}`.
    pub fn control(&self, command: Value) {
        let body = command.to_string();
        let reply =
            crate::client::request(self.port, "POST", "/_fake/control", &[], body.as_bytes())
                .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
}

impl Drop for CloudDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
