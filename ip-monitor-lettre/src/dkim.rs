//! [`DkimKey`]: DKIM signatures (RFC 6376, RFC 8463) on every message, over the bytes as
//! sent. lettre's own signer hashes only the headers it holds itself, and the
//! `Content-Type` of a multipart message is written by its body, so it could not sign
//! `Content-Type`: this one signs the formatted message.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

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
    key: Arc<Key>,
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
        Arc::ptr_eq(&self.key, &other.key)
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
        let key = signing_key(pem)?;
        let algorithm = match key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        };
        Ok(DkimKey {
            key: Arc::new(key),
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

    /// `message` (headers, a blank line, the body, CRLF line ends) with a `DKIM-Signature`
    /// header first: relaxed/relaxed, over the [`SIGNED_HEADERS`] it has.
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let split = memchr::memmem::find(message, b"\r\n\r\n").map_or(message.len(), |i| i + 2);
        let (head, body) = message.split_at(split);
        let body = body.strip_prefix(b"\r\n").unwrap_or(body);
        let fields = header_fields(head);
        let mut signed = Vec::new();
        let mut hashed = Vec::new();
        for name in SIGNED_HEADERS {
            // The last one of a name is the one signed (RFC 6376 §5.4.2).
            if let Some(field) = fields
                .iter()
                .rev()
                .find(|f| field_name(f).eq_ignore_ascii_case(name))
            {
                signed.push(name.to_ascii_lowercase());
                hashed.extend_from_slice(relaxed_field(field).as_bytes());
                hashed.extend_from_slice(b"\r\n");
            }
        }
        let body_hash = STANDARD.encode(Sha256::digest(relaxed_body(body)));
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let unsigned = format!(
            "DKIM-Signature: v=1; a={}; c=relaxed/relaxed; d={}; s={};\r\n t={timestamp}; \
             h={};\r\n bh={body_hash};\r\n b=",
            self.algorithm,
            self.domain,
            self.selector,
            signed.join(":"),
        );
        hashed.extend_from_slice(relaxed_field(&unsigned).as_bytes());
        let signature = match &*self.key {
            // RSASSA-PKCS1-v1_5 over SHA-256 of the canonicalized data (ring hashes it).
            Key::Rsa(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    &hashed,
                    &mut signature,
                )
                .expect("an RSA key of 2048 bits or more signs a SHA-256 digest");
                signature
            }
            // RFC 8463: Ed25519 signs the SHA-256 hash of the canonicalized data.
            Key::Ed25519(key) => key.sign(&Sha256::digest(&hashed)).to_bytes().to_vec(),
        };
        let signature = STANDARD.encode(signature);
        let mut out = Vec::with_capacity(message.len() + unsigned.len() + signature.len() + 16);
        out.extend_from_slice(unsigned.as_bytes());
        for (i, chunk) in signature.as_bytes().chunks(72).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n  ");
            }
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(message);
        out
    }
}

/// A signing key: RSA signs with ring, which is many times faster than the pure-Rust `rsa`
/// crate that reads the key (a fan-out signs every message).
enum Key {
    Rsa(ring::signature::RsaKeyPair),
    Ed25519(ed25519_dalek::SigningKey),
}

/// The header fields of `head`, each with its folding.
fn header_fields(head: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<String> = Vec::new();
    for line in text.split_inclusive("\r\n") {
        match (line.starts_with([' ', '\t']), fields.last_mut()) {
            (true, Some(last)) => last.push_str(line),
            _ => fields.push(line.to_owned()),
        }
    }
    fields
}

fn field_name(field: &str) -> &str {
    field.split(':').next().unwrap_or_default().trim()
}

/// The relaxed canonical form of a header field (RFC 6376 §3.4.2), without its CRLF: the
/// name in lower case, folding removed, runs of whitespace one space, none at the ends of
/// the value or around the colon.
fn relaxed_field(field: &str) -> String {
    let (name, value) = field.split_once(':').unwrap_or((field, ""));
    let mut out = name.trim().to_ascii_lowercase();
    out.push(':');
    let unfolded = value.replace("\r\n", "");
    let mut words = unfolded
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .peekable();
    while let Some(word) = words.next() {
        out.push_str(word);
        if words.peek().is_some() {
            out.push(' ');
        }
    }
    out
}

/// The relaxed canonical form of a body (RFC 6376 §3.4.4): runs of whitespace one space,
/// none at line ends, no empty lines at the end.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                space = true;
                continue;
            }
            if space {
                out.push(b' ');
            }
            space = false;
            out.push(b);
        }
        out.extend_from_slice(b"\r\n");
    }
    while out.ends_with(b"\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    if out == b"\r\n" {
        out.clear();
    }
    out
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

/// The signing key in a PEM: RSA (PKCS #1 or PKCS #8) or Ed25519 (PKCS #8).
fn signing_key(pem: &str) -> Result<Key, Error> {
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
        let der = rsa
            .to_pkcs8_der()
            .map_err(|e| key_error(format!("the RSA key cannot be re-encoded: {e}")))?;
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| key_error(format!("the RSA key is refused: {e}")))?;
        return Ok(Key::Rsa(pair));
    }
    let der = pem_body(pem)?;
    let seed: [u8; 32] = der
        .strip_prefix(&ED25519_PKCS8_PREFIX[..])
        .and_then(|seed| seed.try_into().ok())
        .ok_or_else(|| key_error("neither an RSA nor an Ed25519 private key"))?;
    Ok(Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
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
    fn canonical_forms_are_relaxed() {
        assert_eq!(
            relaxed_field("SubJect :  A \r\n\t folded   line  \r\n"),
            "subject:A folded line"
        );
        assert_eq!(relaxed_body(b"a  b \t\r\n\r\n\r\n"), b"a b\r\n");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(relaxed_body(b" x"), b" x\r\n");
    }

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
