//! The command source runs real programs: the address they print, their failures, their
//! garbage, and a run past the timeout killed with everything it started.
#![cfg(all(feature = "command", unix))]

use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::{CommandIpSource, Family, IpSource, SourceError, SourceSet};

fn sh(script: &str) -> CommandIpSource {
    CommandIpSource::new(["sh", "-c", script]).unwrap()
}

#[tokio::test]
async fn the_printed_address_is_the_answer_and_the_family_is_told() {
    let source = sh(
        r#"if [ "$IP_MONITOR_FAMILY" = ipv6 ]; then echo 2a01:4f8::1; else printf ' 81.2.69.160\n'; fi"#,
    );
    assert_eq!(
        source.fetch(Family::V4).await.unwrap().to_string(),
        "81.2.69.160"
    );
    assert_eq!(
        source.fetch(Family::V6).await.unwrap().to_string(),
        "2a01:4f8::1"
    );
    assert_eq!(IpSource::name(&source), "command:sh");
    assert_eq!(IpSource::name(&source.clone().name("router")), "router");
}

#[tokio::test]
async fn a_failed_run_garbage_and_a_flood_are_failed_answers() {
    let failed = sh("echo first >&2; echo 'login refused' >&2; exit 3");
    let err = failed.fetch(Family::V4).await.unwrap_err();
    assert!(matches!(err, SourceError::Command(_)), "{err:?}");
    assert_eq!(err.to_string(), "exit status: 3: first / login refused");
    assert!(err.is_transient());

    let garbage = sh("echo '<html>'");
    let err = garbage.fetch(Family::V4).await.unwrap_err();
    assert!(matches!(err, SourceError::Invalid { .. }), "{err:?}");

    let two = sh("echo 81.2.69.160; echo 81.2.69.161");
    assert!(matches!(
        two.fetch(Family::V4).await,
        Err(SourceError::Invalid { .. })
    ));

    let wrong_family = sh("echo 2a01:4f8::1");
    let err = wrong_family.fetch(Family::V4).await.unwrap_err();
    assert!(matches!(err, SourceError::WrongFamily { .. }), "{err:?}");

    let flood = sh("yes 81.2.69.160");
    let err = flood.fetch(Family::V4).await.unwrap_err();
    assert!(matches!(err, SourceError::TooLarge { .. }), "{err:?}");

    let missing = CommandIpSource::new(["/nonexistent/router-cli"]).unwrap();
    let err = missing.fetch(Family::V4).await.unwrap_err().to_string();
    assert!(
        err.starts_with("cannot run \"/nonexistent/router-cli\""),
        "{err}"
    );
}

#[tokio::test]
async fn arguments_reach_the_program_as_they_are_with_no_shell() {
    let echo = CommandIpSource::new(["echo", "$(id)"]).unwrap();
    let err = echo.fetch(Family::V4).await.unwrap_err().to_string();
    assert!(err.contains("$(id)"), "{err}");
    assert!(CommandIpSource::new(Vec::<String>::new()).is_err());
    assert!(CommandIpSource::new([""]).is_err());
}

#[tokio::test]
async fn a_run_past_the_timeout_is_killed_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let set = SourceSet::new(vec![Arc::new(sh(&script))]).timeout(Duration::from_millis(500));
    let source = set.sources()[0].clone();
    let (result, _) = SourceSet::ask(&source, Family::V4, set.current_timeout()).await;
    assert!(matches!(result, Err(SourceError::Timeout(_))), "{result:?}");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let proc = format!("/proc/{}", pid.trim());
    // The kill is sent as the run is dropped; the kernel reaps the grandchild soon after.
    for _ in 0..100 {
        let state = std::fs::read_to_string(format!("{proc}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init.
        if state.is_empty() || state.split_whitespace().nth(2) == Some("Z") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the grandchild {} outlived the timeout", pid.trim());
}
