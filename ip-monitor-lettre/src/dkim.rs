//! [`DkimKey`]: DKIM signatures (RFC 6376, RFC 8463) on every message, with lettre's signer.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;

use crate::error::Error;

/// The headers signed: those receivers check, and those that say what the body is.
pub const SIGNED_HEADERS: [&str; 8] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Auto-Submitted",
];

/// The shortest RSA key accepted (RFC 8301: 1024 is the least verifiers accept; 2048 is
/// what they expect).
const RSA_BITS: usize = 2048;

/// The DER prefix of an Ed25519 private key in PKCS #8 (RFC 8410), before its 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A DKIM signing key, its selector and its domain: every message is signed with it
/// (`rsa-sha256` or `ed25519-sha256`, relaxed/relaxed, the [`SIGNED_HEADERS`]). Clones
/// share the key.
///
/// ```no_run
/// use ip_monitor_lettre::{DkimKey, MessageTemplate};
/// # fn main() -> Result<(), ip_monitor_lettre::Error> {
/// let key = DkimKey::from_file("/etc/ip-monitor/dkim.pem", "mail", "example.com")?;
/// let template = MessageTemplate::new("IP Monitor <noreply@example.com>")?.dkim(key);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DkimKey {
    config: Arc<DkimConfig>,
    selector: String,
    domain: String,
    algorithm: &'static str,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PartialEq for DkimKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for DkimKey {}

fn key_error(message: impl Into<String>) -> Error {
    Error::Config {
        key: "dkim_key_file",
        message: message.into(),
    }
}

impl DkimKey {
    /// The key in the PEM file at `path`: RSA of at least 2048 bits (`BEGIN RSA PRIVATE
    /// KEY` or `BEGIN PRIVATE KEY`), or Ed25519 (`BEGIN PRIVATE KEY`, as `openssl genpkey
    /// -algorithm ed25519` writes it). An error names `dkim_key_file` and the file.
    pub fn from_file(path: impl AsRef<Path>, selector: &str, domain: &str) -> Result<Self, Error> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path)
            .map_err(|e| key_error(format!("cannot read {}: {e}", path.display())))?;
        Self::from_pem(&pem, selector, domain)
            .map_err(|e| key_error(format!("{}: {}", path.display(), reason(&e))))
    }

    /// The key in `pem` (see [`from_file`](Self::from_file)).
    pub fn from_pem(pem: &str, selector: &str, domain: &str) -> Result<Self, Error> {
        if selector.is_empty() || !selector.split('.').all(is_label) {
            return Err(Error::Config {
                key: "dkim_selector",
                message: format!("{selector:?} is not a DNS label (e.g. \"mail\")"),
            });
        }
        if !domain.split('.').all(is_label) || !domain.contains('.') {
            return Err(Error::Config {
                key: "dkim_domain",
                message: format!("{domain:?} is not a domain name"),
            });
        }
        let (key, algorithm) = signing_key(pem)?;
        let headers = SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        let config = DkimConfig::new(
            selector.to_owned(),
            domain.to_owned(),
            key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(DkimKey {
            config: Arc::new(config),
            selector: selector.to_owned(),
            domain: domain.to_owned(),
            algorithm,
        })
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `rsa-sha256` or `ed25519-sha256`.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// Add a `DKIM-Signature` to `message`.
    pub(crate) fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

fn reason(e: &Error) -> String {
    match e {
        Error::Config { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// lettre's signing key from a PEM: RSA as PKCS #1 (converted from PKCS #8), Ed25519 as
/// its seed.
fn signing_key(pem: &str) -> Result<(DkimSigningKey, &'static str), Error> {
    let rsa = if pem.contains("BEGIN RSA PRIVATE KEY") {
        Some(rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| key_error(e.to_string()))?)
    } else if pem.contains("BEGIN PRIVATE KEY") {
        rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok()
    } else {
        return Err(key_error(
            "expected a PEM private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)",
        ));
    };
    if let Some(rsa) = rsa {
        let bits = rsa.size() * 8;
        if bits < RSA_BITS {
            return Err(key_error(format!(
                "an RSA key of {bits} bits: at least {RSA_BITS} are needed"
            )));
        }
        let pkcs1 = rsa
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| key_error(e.to_string()))?;
        let key = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
            .map_err(|e| key_error(e.to_string()))?;
        return Ok((key, "rsa-sha256"));
    }
    let der = pem_body(pem)?;
    let seed = der
        .strip_prefix(&ED25519_PKCS8_PREFIX[..])
        .filter(|seed| seed.len() == 32)
        .ok_or_else(|| key_error("neither an RSA nor an Ed25519 private key"))?;
    let key = DkimSigningKey::new(&STANDARD.encode(seed), DkimSigningAlgorithm::Ed25519)
        .map_err(|e| key_error(e.to_string()))?;
    Ok((key, "ed25519-sha256"))
}

/// The DER inside a PEM's first block.
fn pem_body(pem: &str) -> Result<Vec<u8>, Error> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD
        .decode(body.trim())
        .map_err(|e| key_error(format!("the PEM is not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_are_not_usable_name_the_key() {
        for (pem, selector, domain, key) in [
            ("not a key", "mail", "example.com", "dkim_key_file"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "mail",
                "example.com",
                "dkim_key_file",
            ),
            ("", "", "example.com", "dkim_selector"),
            ("", "mail", "localhost", "dkim_domain"),
        ] {
            match DkimKey::from_pem(pem, selector, domain) {
                Err(Error::Config { key: got, .. }) => assert_eq!(got, key, "{pem:?}"),
                other => panic!("{pem:?}: {other:?}"),
            }
        }
        let missing = DkimKey::from_file("/nonexistent/dkim.pem", "mail", "example.com");
        let message = missing.unwrap_err().to_string();
        assert!(
            message.contains("dkim_key_file") && message.contains("/nonexistent/dkim.pem"),
            "{message}"
        );
    }
}
