//! The configuration's tests: keys, defaults, errors naming their key.

use std::time::Duration;

use ip_monitor_core::{Family, Strategy};

use super::*;

fn load(text: &str) -> Result<Settings, ConfigError> {
    Settings::parse("t.toml", text)
}

#[test]
fn defaults_and_overrides() {
    let s = load("").unwrap();
    assert_eq!(s.monitor, MonitorConfig::default());
    assert_eq!(s.store_url, "sqlite://ip-monitor.db");
    assert_eq!(s.sources.sources().len(), 3);
    let s = load(
        r#"
        interval = "30m"
        probe_interval = "0s"
        families = ["v4", "v6"]
        [sources]
        strategy = "fallback"
        timeout = "2s"
        [[sources.list]]
        kind = "dns"
        provider = "google"
        server = "127.0.0.1:5353"
        [delivery]
        parallelism = 4
        "#,
    )
    .unwrap();
    assert_eq!(s.monitor.interval, Duration::from_secs(1800));
    assert_eq!(s.monitor.probe_interval, Duration::ZERO);
    assert_eq!(s.monitor.families, [Family::V4, Family::V6]);
    assert_eq!(s.monitor.delivery.parallelism, 4);
    assert_eq!(s.sources.current_strategy(), Strategy::Fallback);
}

#[test]
fn an_https_source_can_trust_a_private_ca() {
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testkit/fixtures/ca.pem");
    let s = load(&format!(
        "[[sources.list]]\nkind = \"http\"\nurl = \"https://127.0.0.1:8443/\"\nca_file = \"{ca}\""
    ))
    .unwrap();
    assert_eq!(s.sources.sources().len(), 1);
}

#[test]
fn errors_name_the_key() {
    let cases = [
        ("interval = \"soon\"", "interval"),
        ("bogus = 1", "bogus"),
        ("families = [\"v5\"]", "families"),
        ("[sources]\nstrategy = \"vote\"", "sources.strategy"),
        ("[[sources.list]]\nkind = \"ftp\"", "sources.list[0].kind"),
        ("[[sources.list]]\nkind = \"http\"", "sources.list[0].url"),
        (
            "[[sources.list]]\nkind = \"http\"\nurl = \"https://example.com/\"\nca_file = \"/nonexistent/ca.pem\"",
            "sources.list[0].ca_file",
        ),
        (
            "[[sources.list]]\nkind = \"dns\"\nprovider = \"google\"\nserver = \"nope\"",
            "sources.list[0].server",
        ),
        (
            "[[sources.list]]\nkind = \"http\"\nurl = \"https://example.com/\"\nserver = \"127.0.0.1:53\"",
            "sources.list[0].server",
        ),
        (
            "[[sources.list]]\nkind = \"dns\"\nprovider = \"google\"\nurl = \"https://example.com/\"",
            "sources.list[0].url",
        ),
        (
            "[[sources.list]]\nkind = \"local\"\nallow_non_global = true",
            "sources.list[0].allow_non_global",
        ),
        ("[smtp]\nport = 25", "smtp.host"),
        (
            "[smtp]\nhost = \"mail.example.com\"\ntls = \"ssl\"",
            "smtp.tls",
        ),
        (
            "[smtp]\nhost = \"mail.example.com\"\ntls = \"none\"\nusername = \"u\"\npassword_env = \"PATH\"",
            "smtp.tls",
        ),
        (
            "[smtp]\nhost = \"h\"\nusername = \"u\"\npassword_env = \"IP_MONITOR_SURELY_UNSET\"",
            "smtp.password_env",
        ),
        ("[email]\nfrom = \"not a mailbox\"", "email.from"),
        (
            "[smtp]\nhost = \"h\"\nfrom = \"a@example.com\"\ndkim_key_file = \"/nonexistent/dkim.pem\"\ndkim_selector = \"mail\"",
            "smtp.dkim_key_file",
        ),
        (
            "[smtp]\nhost = \"h\"\nfrom = \"a@example.com\"\ndkim_key_file = \"/etc/hostname\"\ndkim_selector = \"mail\"",
            "smtp.dkim_key_file",
        ),
        (
            "[smtp]\nhost = \"h\"\ndkim_key_file = \"/etc/hostname\"",
            "smtp.dkim_selector",
        ),
        (
            "[smtp]\nhost = \"h\"\ndkim_selector = \"mail\"",
            "smtp.dkim_key_file",
        ),
        (
            "[smtp]\nhost = \"h\"\nquota_retry = \"0s\"",
            "smtp.quota_retry",
        ),
        (
            "[smtp]\nhost = \"h\"\n[[smtp.fallback]]\nhost = \"b\"\ndkim_selector = \"mail\"",
            "smtp.fallback[0].dkim_selector",
        ),
        ("service_url = \"ftp://{ip}/\"", "service_url"),
    ];
    errors_name(&cases);
}

fn errors_name(cases: &[(&str, &str)]) {
    for &(text, key) in cases {
        let e = load(text).expect_err(text);
        let shown = e.to_string();
        assert!(
            shown.contains(key) || e.key.as_deref() == Some(key),
            "{text:?}: {shown}"
        );
        assert!(shown.starts_with("t.toml"), "{shown}");
    }
}

#[test]
fn interface_command_and_watch_errors_name_the_key() {
    errors_name(&[
        (
            "[[sources.list]]\nkind = \"interface\"\nprefer = \"newest\"",
            "sources.list[0].prefer",
        ),
        (
            "[[sources.list]]\nkind = \"interface\"\ninterface = \"eth0 ppp0\"",
            "sources.list[0].interface",
        ),
        (
            "[[sources.list]]\nkind = \"interface\"\nurl = \"https://example.com/\"",
            "sources.list[0].url",
        ),
        (
            "[[sources.list]]\nkind = \"command\"",
            "sources.list[0].command",
        ),
        (
            "[[sources.list]]\nkind = \"command\"\ncommand = []",
            "sources.list[0].command",
        ),
        (
            "[[sources.list]]\nkind = \"local\"\ncommand = [\"echo\"]",
            "sources.list[0].command",
        ),
        ("[watch]\ninterfaces = \"yes\"", "interfaces"),
        ("[[hooks]]\ntimeout = \"5s\"", "hooks[0].command"),
        ("[[hooks]]\ncommand = []", "hooks[0].command"),
        (
            "[[hooks]]\ncommand = [\"/bin/true\"]\ntimeout = \"0s\"",
            "hooks[0].timeout",
        ),
        (
            "[[hooks]]\ncommand = [\"/bin/true\"]\nname = \"a b\"",
            "hooks[0].name",
        ),
        (
            "[[hooks]]\ncommand = [\"/bin/true\"]\n[[hooks]]\ncommand = [\"/usr/bin/true\"]",
            "hooks[1].name",
        ),
        (
            "[[hooks]]\ncommand = [\"/bin/true\"]\nshell = true",
            "shell",
        ),
        (
            "[[sources.list]]\nkind = \"natpmp\"\ngateway = \"router.lan\"",
            "sources.list[0].gateway",
        ),
        (
            "[[sources.list]]\nkind = \"pcp\"\nurl = \"http://192.168.1.1/\"",
            "sources.list[0].url",
        ),
        (
            "[[sources.list]]\nkind = \"upnp\"\nurl = \"192.168.1.1:5000\"",
            "sources.list[0].url",
        ),
        (
            "[[sources.list]]\nkind = \"upnp\"\ngateway = \"192.168.1.1\"",
            "sources.list[0].gateway",
        ),
        ("[watch]\nrouter = true", "router"),
    ]);
}

#[test]
fn interface_and_command_sources_and_the_watch_load() {
    let s = load(
        "[watch]\ninterfaces = false\n\
         [[sources.list]]\nkind = \"interface\"\ninterface = \"ppp0\"\nprefer = \"temporary\"\n\
         [[sources.list]]\nkind = \"command\"\ncommand = [\"/usr/local/bin/wan-ip\", \"--wan\"]\n\
         name = \"router\"",
    )
    .unwrap();
    assert!(!s.watch_interfaces);
    let names: Vec<&str> = s.sources.sources().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["interface:ppp0", "router"]);
    assert!(
        load("").unwrap().watch_interfaces,
        "interface events are on by default"
    );
}

#[test]
fn router_sources_load_and_their_announcements_are_listened_for() {
    let text = "[[sources.list]]\nkind = \"natpmp\"\n\
                [[sources.list]]\nkind = \"pcp\"\ngateway = \"192.168.1.1\"\nname = \"box\"\n\
                [[sources.list]]\nkind = \"upnp\"\nurl = \"http://192.168.1.1:5000/rootDesc.xml\"";
    let s = load(text).unwrap();
    let names: Vec<&str> = s.sources.sources().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["natpmp", "box", "upnp"]);
    let gateways: Vec<_> = s.routers.iter().map(|r| r.configured_gateway()).collect();
    assert_eq!(gateways, [None, Some("192.168.1.1".parse().unwrap())]);
    let off = load(&format!("[watch]\nrouters = false\n{text}")).unwrap();
    assert!(off.routers.is_empty());
}

mod example_file {
    const EXAMPLE: &str = include_str!("../../ip-monitor.example.toml");

    #[test]
    fn the_example_file_documents_keys_that_load() {
        let (f, monitor) = super::split("example", EXAMPLE).expect("every key known");
        assert!(f.email.is_some() && f.recipients.is_some());
        assert_eq!(
            monitor,
            super::MonitorConfig::default(),
            "the defaults, as it says"
        );
        // The [smtp] keys, once their "# " is removed as the file says.
        let mut in_smtp = false;
        let enabled: Vec<String> = EXAMPLE
            .lines()
            .map(|line| {
                if line.starts_with('[') {
                    in_smtp = false;
                }
                if line == "# [smtp]" {
                    in_smtp = true;
                }
                let key = line.strip_prefix("# ").filter(|rest| {
                    in_smtp
                        && (rest.starts_with('[')
                            || rest.split_once(" = ").is_some_and(|(k, _)| {
                                k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                            }))
                });
                key.unwrap_or(line).to_owned()
            })
            .collect();
        let (f, _) = super::split("example", &enabled.join("\n")).expect("the [smtp] keys parse");
        let smtp = f.smtp.expect("an [smtp] section once enabled");
        assert!(smtp.host.is_some() && smtp.password_env.is_some() && smtp.ca_file.is_some());
    }

    #[test]
    fn the_example_file_works_as_it_is() {
        let s = super::Settings::parse("ip-monitor.toml", EXAMPLE).expect("valid as shipped");
        assert!(
            matches!(s.notifier, super::NotifierSetting::Files(_)),
            "no relay until [smtp] is set"
        );
        assert!(
            matches!(&s.recipients, super::RecipientsSetting::Static(list) if list.is_empty()),
            "nobody until [recipients] is set (no query over a table that is not there)"
        );
    }
}

mod email_words {
    use super::Settings;

    #[test]
    fn the_locale_gives_the_words_and_each_key_overrides_one() {
        let s = Settings::parse(
            "t.toml",
            "[email]\nlocale = \"zh-CN\"\nbutton = \"进入系统\"\n",
        )
        .unwrap();
        let text = &s.template.text;
        assert_eq!(text.lang, "zh-CN");
        assert_eq!(text.button, "进入系统");
        assert_eq!(text.subject, "服务器地址已变更");
        let err = Settings::parse("t.toml", "[email]\nlocale = \"klingon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("email.locale") && err.contains("klingon"),
            "{err}"
        );
    }
}

#[test]
fn debug_output_masks_every_secret() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("smtp-password");
    std::fs::write(&password, "smtp-s3cret-word").unwrap();
    let s = load(&format!(
        r#"
        [store]
        url = "postgres://app:pa?ss-w0rd@127.0.0.1/app?sslpassword=k3y-w0rd"
        [recipients]
        database_url = "postgres://hr:hr-pa55@127.0.0.1/hr?password=hr-again"
        [smtp]
        host = "127.0.0.1"
        username = "mailer"
        password_file = "{}"
        [[channels]]
        kind = "dingtalk"
        url = "https://oapi.dingtalk.com/robot/send?access_token=b0t-t0ken"
        "#,
        password.display()
    ))
    .unwrap();
    let shown = format!("{s:?}");
    for secret in [
        "pa?ss-w0rd",
        "k3y-w0rd",
        "hr-pa55",
        "hr-again",
        "smtp-s3cret-word",
        "b0t-t0ken",
    ] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    assert!(shown.contains("127.0.0.1"), "the rest is shown: {shown}");
}

#[test]
fn database_urls_come_from_the_environment_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store-url");
    std::fs::write(&file, "postgres://app:f1le@127.0.0.1/app\n").unwrap();
    let s = load(&format!(
        "[store]\nurl_file = \"{}\"\n[recipients]\ndatabase_url_file = \"{}\"",
        file.display(),
        file.display()
    ))
    .unwrap();
    assert_eq!(s.store_url, "postgres://app:f1le@127.0.0.1/app");
    assert!(matches!(
        &s.recipients,
        RecipientsSetting::Query { database_url: Some(u), .. } if u == "postgres://app:f1le@127.0.0.1/app"
    ));
    assert!(s.inline_secrets.is_empty());
    // PATH is set wherever tests run: any variable will do.
    let s = load("[store]\nurl_env = \"PATH\"").unwrap();
    assert_eq!(s.store_url, std::env::var("PATH").unwrap().trim());
    let cases = [
        (
            "[store]\nurl = \"sqlite://a.db\"\nurl_env = \"PATH\"".to_owned(),
            "store.url",
        ),
        (
            "[store]\nurl_env = \"IP_MONITOR_NO_SUCH_VARIABLE\"".to_owned(),
            "store.url_env",
        ),
        (
            format!("[store]\nurl_file = \"{}/missing\"", dir.path().display()),
            "store.url_file",
        ),
        (
            "[recipients]\ndatabase_url_env = \"IP_MONITOR_NO_SUCH_VARIABLE\"".to_owned(),
            "recipients.database_url_env",
        ),
    ];
    for (text, key) in cases {
        let e = load(&text).err().unwrap_or_else(|| panic!("{text} loads"));
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
    }
}

#[test]
fn a_secret_in_a_file_others_can_read_is_warned_of() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ip-monitor.toml");
    std::fs::write(
        &path,
        "[store]\nurl = \"postgres://app:s3cret@127.0.0.1/app\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let s = Settings::load(Some(&path)).unwrap();
    assert_eq!(s.inline_secrets, ["store.url"]);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("store.url") && s.warnings[0].contains("0644"));
    assert!(!s.warnings[0].contains("s3cret"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(Settings::load(Some(&path)).unwrap().warnings.is_empty());
    // No secret in it: nothing to warn of.
    std::fs::write(&path, "[store]\nurl = \"sqlite://a.db\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(Settings::load(Some(&path)).unwrap().warnings.is_empty());
}
