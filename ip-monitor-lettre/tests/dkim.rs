//! DKIM signatures checked by an independent verifier (dkimpy, Debian's python3-dkim)
//! against the public key, for RSA and Ed25519 keys made by openssl — also after a relay
//! re-folds the headers. Skipped, saying why, where openssl or dkimpy is missing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use ip_monitor_core::{Notice, Recipient};
use ip_monitor_lettre::{DkimKey, MessageTemplate};

const PYTHON: &str = "/usr/bin/python3";

/// Verifies the message on stdin against the public key `p=` in argv[1] (base64) of type
/// argv[2] (`rsa` or `ed25519`); prints the signature's tags, exits 1 when it fails.
const VERIFY: &str = r#"
import sys, dkim
p, k = sys.argv[1], sys.argv[2]
record = ("v=DKIM1; k=%s; p=%s" % (k, p)).encode()
def dns(name, timeout=5):
    return record if name == b"mail._domainkey.example.com." else None
message = sys.stdin.buffer.read()
ok = dkim.verify(message, dnsfunc=dns)
print("verified" if ok else "failed")
sys.exit(0 if ok else 1)
"#;

fn unavailable() -> Option<String> {
    let openssl = Command::new("openssl").arg("version").output();
    if !openssl.is_ok_and(|o| o.status.success()) {
        return Some("openssl is not installed".to_owned());
    }
    let dkimpy = Command::new(PYTHON)
        .args(["-c", "import dkim, nacl"])
        .output();
    (!dkimpy.is_ok_and(|o| o.status.success()))
        .then(|| "dkimpy is not installed (Debian packages python3-dkim, python3-nacl)".to_owned())
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A new key of `algorithm` in `dir`: its PEM file and the DNS record's `p=` value.
fn key(dir: &Path, algorithm: &str) -> (std::path::PathBuf, String) {
    let pem = dir.join(format!("{algorithm}.pem"));
    let mut args = vec![
        "genpkey",
        "-algorithm",
        algorithm,
        "-out",
        pem.to_str().unwrap(),
    ];
    if algorithm == "RSA" {
        args.extend(["-pkeyopt", "rsa_keygen_bits:2048"]);
    }
    openssl(&args);
    let der = openssl(&[
        "pkey",
        "-in",
        pem.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    // RSA: the SubjectPublicKeyInfo; Ed25519: the raw 32-byte key (RFC 8463).
    let p = if algorithm == "RSA" {
        b64.encode(&der)
    } else {
        b64.encode(&der[der.len() - 32..])
    };
    (pem, p)
}

fn verify(message: &[u8], p: &str, k: &str) -> Result<(), String> {
    let mut child = Command::new(PYTHON)
        .args(["-c", VERIFY, p, k])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// What a relay may do to the headers in transit under relaxed canonicalization: unfold
/// them and fold them again elsewhere, and change the case of their names.
fn refold(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(message.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let mut out = String::new();
    for line in unfolded.split("\r\n") {
        let line = if let Some(rest) = line.strip_prefix("Subject: ") {
            format!("subject:   {}", rest.replacen(' ', "\r\n\t ", 1))
        } else if let Some(rest) = line.strip_prefix("To: ") {
            format!("TO:{rest}")
        } else {
            line.to_owned()
        };
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

#[test]
fn signatures_verify_with_an_independent_verifier() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let notice = Notice::new(
        5,
        "81.2.69.161".parse().unwrap(),
        "http://81.2.69.161:8008/".into(),
        SystemTime::now(),
        false,
    )
    .unwrap();
    let to = Recipient::new("li@example.com", Some("李雷 (Li Lei), Operations")).unwrap();
    for (algorithm, k, a) in [
        ("RSA", "rsa", "rsa-sha256"),
        ("ED25519", "ed25519", "ed25519-sha256"),
    ] {
        let (pem, p) = key(dir.path(), algorithm);
        let dkim = DkimKey::from_file(&pem, "mail", "example.com").unwrap();
        assert_eq!(dkim.algorithm(), a);
        let template = MessageTemplate::new("IP Monitor <noreply@example.com>")
            .unwrap()
            .dkim(dkim);
        let raw = template.bytes(&template.build(&notice, &to).unwrap());
        let text = String::from_utf8_lossy(&raw).replace("\r\n ", " ");
        let signature = text
            .lines()
            .find(|l| l.starts_with("DKIM-Signature:"))
            .unwrap();
        assert!(signature.contains(&format!("a={a}")), "{signature}");
        assert!(signature.contains("c=relaxed/relaxed"), "{signature}");
        assert!(
            signature.contains(
                "h=from:to:subject:date:message-id:mime-version:content-type:auto-submitted"
            ),
            "{signature}"
        );
        verify(&raw, &p, k).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        verify(&refold(&raw), &p, k)
            .unwrap_or_else(|e| panic!("{algorithm}, headers re-folded: {e}"));
        // A changed body or a changed subject fails: the verifier is not a yes-man.
        let tampered = String::from_utf8(raw.clone())
            .unwrap()
            .replace("81.2.69.161:8008", "81.2.69.162:8008");
        assert!(
            verify(tampered.as_bytes(), &p, k).is_err(),
            "{algorithm}: body changed"
        );
        let retitled =
            String::from_utf8(raw.clone())
                .unwrap()
                .replacen("Subject: ", "Subject: Re: ", 1);
        assert!(
            verify(retitled.as_bytes(), &p, k).is_err(),
            "{algorithm}: subject changed"
        );
    }
    // The same RSA key as PKCS #1 (`BEGIN RSA PRIVATE KEY`) signs the same way.
    let (pkcs8, p) = key(dir.path(), "RSA");
    let pkcs1 = dir.path().join("rsa-pkcs1.pem");
    openssl(&[
        "rsa",
        "-in",
        pkcs8.to_str().unwrap(),
        "-traditional",
        "-out",
        pkcs1.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(&pkcs1)
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY")
    );
    let dkim = DkimKey::from_file(&pkcs1, "mail", "example.com").unwrap();
    let template = MessageTemplate::new("IP Monitor <noreply@example.com>")
        .unwrap()
        .dkim(dkim);
    let raw = template.bytes(&template.build(&notice, &to).unwrap());
    verify(&raw, &p, "rsa").unwrap_or_else(|e| panic!("RSA, PKCS #1: {e}"));
}

#[test]
fn short_rsa_keys_are_refused_by_name() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("short.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        pem.to_str().unwrap(),
    ]);
    let e = DkimKey::from_file(&pem, "mail", "example.com")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dkim_key_file") && e.contains("1024 bits"),
        "{e}"
    );
}

/// `preview` with a key writes the message signed, as it would be sent.
#[tokio::test]
async fn the_preview_is_signed_when_a_key_is_set() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pem, p) = key(dir.path(), "ED25519");
    let template = MessageTemplate::new("IP Monitor <noreply@example.com>")
        .unwrap()
        .dkim(DkimKey::from_file(&pem, "mail", "example.com").unwrap());
    let notice = Notice::new(
        6,
        "81.2.69.161".parse().unwrap(),
        "http://81.2.69.161:8008/".into(),
        SystemTime::now(),
        false,
    )
    .unwrap();
    let to = Recipient::new("ana@example.com", None::<&str>).unwrap();
    let files = ip_monitor_lettre::preview(&notice, &to, &template, &dir.path().join("out"))
        .await
        .unwrap();
    let eml = std::fs::read(&files.eml).unwrap();
    assert!(eml.starts_with(b"DKIM-Signature: "));
    verify(&eml, &p, "ed25519").unwrap();
}
