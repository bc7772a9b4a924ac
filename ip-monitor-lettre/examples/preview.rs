//! Write `notice.eml`, `notice.html` and `qr.png` for an address, to look at the message.
//!
//! Run: `cargo run -p ip-monitor-lettre --example preview -- OUT_DIR [IP]`

use std::time::SystemTime;

use ip_monitor_core::{Notice, Recipient, UrlTemplate};
use ip_monitor_lettre::{MessageTemplate, preview};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: preview OUT_DIR [IP]")?;
    let ip = args
        .next()
        .unwrap_or_else(|| "81.2.69.160".to_owned())
        .parse()?;
    let url = UrlTemplate::default().render(ip);
    let notice = Notice::new(1, ip, url, SystemTime::now(), false)?;
    let ana = Recipient::new("ana@example.com", Some("Ana"))?;
    let files = preview(
        &notice,
        &ana,
        &MessageTemplate::new("IP Monitor <noreply@example.com>")?,
        out.as_ref(),
    )
    .await?;
    println!(
        "{}\n{}\n{}",
        files.eml.display(),
        files.html.display(),
        files.png.display()
    );
    Ok(())
}
