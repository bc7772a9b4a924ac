//! `preview --out DIR [--ip ADDR]`: the message, the QR code, each channel's payload, each hook's command line and each DNS record's plan, written to files.

use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use ip_monitor_core::{Notice, Recipient};
use ip_monitor_standalone::config::{Channel, Settings};
use serde_json::Value;

use super::{Outcome, address};

pub(crate) async fn preview(s: &Settings, out: &Path, ip: Option<IpAddr>) -> Outcome {
    let address = address(s, ip).await?;
    let url = s.url_template.render(address);
    let notice = Notice::new(0, address, url, SystemTime::now(), false)?;
    let sample = Recipient::new("staff@example.com", Some("Staff Member")).expect("valid sample");
    let files = ip_monitor_lettre::preview(&notice, &sample, &s.template, out).await?;
    println!(
        "{}\n{}\n{}",
        files.eml.display(),
        files.html.display(),
        files.png.display()
    );
    // Each chat's requests, as they would be posted now; what each push would send.
    for (name, channel) in &s.channels {
        let chat = match channel {
            Channel::Chat(chat) => chat,
            Channel::Push(push) => {
                let path = out.join(format!("channel-{name}.txt"));
                let text = push.describe(&notice);
                ip_monitor_lettre::write_atomically(&path, text.as_bytes()).await?;
                println!("{}", path.display());
                continue;
            }
        };
        for (i, request) in chat.requests(&notice, SystemTime::now()).iter().enumerate() {
            let path = out.join(format!("channel-{name}-{}.json", i + 1));
            let body: Value = serde_json::from_slice(&request.body)?;
            // 0600, created new and renamed into place: a link planted there is replaced.
            ip_monitor_lettre::write_atomically(
                &path,
                serde_json::to_string_pretty(&body)?.as_bytes(),
            )
            .await?;
            println!("{}", path.display());
        }
    }
    // Each hook: what it would run (nothing is run).
    for (name, hook) in &s.hooks {
        let path = out.join(format!("{name}.txt"));
        let line = format!("would run {:?}\n", hook.command_line(&notice));
        ip_monitor_lettre::write_atomically(&path, line.as_bytes()).await?;
        println!("{}", path.display());
    }
    // Each DNS record: what its update would do (nothing is sent).
    for d in &s.dns {
        let path = out.join(format!("dns-{}.txt", d.name));
        let plan = d.plan.replace("{address}", &address.to_string());
        ip_monitor_lettre::write_atomically(&path, format!("{plan}\n").as_bytes()).await?;
        println!("{}", path.display());
    }
    Ok(())
}
