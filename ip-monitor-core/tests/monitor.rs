//! The monitor loop on tokio's paused clock, with the in-memory parts shipped in core.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::*;

const MIN: Duration = Duration::from_secs(60);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Rig {
    a: StaticIpSource,
    b: StaticIpSource,
    store: MemoryStore,
    staff: StaticRecipients,
    notifier: RecordingNotifier,
}

impl Rig {
    fn new(address: &str) -> Self {
        Rig {
            a: StaticIpSource::new("a").with_answer(ip(address)),
            b: StaticIpSource::new("b").with_answer(ip(address)),
            store: MemoryStore::new(),
            staff: StaticRecipients::with_names([
                ("ana@example.com", Some("Ana")),
                ("ben@example.com", None),
                ("cho@example.com", Some("Cho")),
            ]),
            notifier: RecordingNotifier::new(),
        }
    }

    fn set(&self, address: &str) {
        self.a.set(ip(address));
        self.b.set(ip(address));
    }

    fn monitor(&self, config: MonitorConfig) -> MonitorBuilder {
        self.monitor_with(config, self.notifier.clone())
    }

    fn monitor_with(&self, config: MonitorConfig, notifier: RecordingNotifier) -> MonitorBuilder {
        Monitor::builder(
            SourceSet::new(vec![Arc::new(self.a.clone()), Arc::new(self.b.clone())]),
            self.store.clone(),
            self.staff.clone(),
            notifier,
        )
        .config(config)
        .clock(TokioClock::new())
    }

    fn spawn(&self) -> MonitorHandle {
        self.monitor(MonitorConfig::default())
            .build()
            .unwrap()
            .spawn()
    }

    async fn counts(&self) -> DeliveryCounts {
        self.store.delivery_counts().await.unwrap()
    }
}

async fn wait(d: Duration) {
    tokio::time::sleep(d).await;
}

fn sent_urls(n: &RecordingNotifier) -> Vec<String> {
    n.sent()
        .iter()
        .map(|(notice, _)| notice.url.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn first_address_is_recorded_and_sent_once_to_each_recipient() {
    let rig = Rig::new("81.2.69.160");
    let handle = rig.spawn();
    wait(Duration::from_secs(1)).await;
    let mut to = rig.notifier.sent_to();
    to.sort();
    assert_eq!(
        to,
        ["ana@example.com", "ben@example.com", "cho@example.com"]
    );
    assert!(
        sent_urls(&rig.notifier)
            .iter()
            .all(|u| u == "http://81.2.69.160:8008/")
    );
    let notice = &rig.notifier.sent()[0].0;
    assert!(notice.qr_png.is_some(), "the QR is rendered");
    assert!(
        rig.notifier
            .sent()
            .iter()
            .all(|(n, _)| Arc::ptr_eq(n.qr_png.as_ref().unwrap(), notice.qr_png.as_ref().unwrap())),
        "one QR per change, shared by all deliveries"
    );
    let history = rig.store.history(10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].address,
            history[0].previous,
            history[0].deliveries
        ),
        (ip("81.2.69.160"), None, 3)
    );
    assert_eq!(rig.counts().await.sent, 3);
    let status = handle.status();
    assert!(status.leader);
    assert_eq!(status.current, [ip("81.2.69.160")]);
    assert_eq!(status.sources.len(), 2);

    // The same address again: nothing new, at one probe request a minute.
    let calls_before = rig.a.calls();
    let reports = handle.check_now().await.unwrap();
    assert!(reports[0].change.is_none());
    wait(10 * MIN).await;
    assert_eq!(rig.notifier.attempts(), 3);
    assert_eq!(rig.store.history(10).await.unwrap().len(), 1);
    let probes = rig.a.calls() - calls_before - 1;
    assert!(
        (9..=11).contains(&probes),
        "{probes} requests to the first source in 10 minutes"
    );
    assert_eq!(
        rig.b.calls(),
        2,
        "the second source is asked only in full checks"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_new_address_is_noticed_by_the_probe_within_a_minute() {
    let rig = Rig::new("81.2.69.160");
    let handle = rig.spawn();
    wait(Duration::from_secs(5)).await;
    rig.set("81.2.69.161");
    let mut events = handle.subscribe();
    wait(MIN + Duration::from_secs(5)).await;
    let history = rig.store.history(10).await.unwrap();
    assert_eq!(history.len(), 2, "the change was recorded within a minute");
    assert_eq!(history[0].previous, Some(ip("81.2.69.160")));
    let urls = sent_urls(&rig.notifier);
    assert_eq!(
        urls.iter()
            .filter(|u| *u == "http://81.2.69.161:8008/")
            .count(),
        3
    );
    let mut saw_probe = false;
    while let Ok(e) = events.try_recv() {
        saw_probe |= matches!(e, Event::ProbeMismatch { .. });
    }
    assert!(saw_probe, "the probe triggered the check");
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_delivered_once() {
    let rig = Rig::new("81.2.69.160");
    rig.notifier
        .fail_next("ben@example.com", 3, FailureKind::Transient);
    let handle = rig.spawn();
    wait(Duration::from_secs(1)).await;
    assert_eq!(rig.counts().await.sent, 2);
    // 30 s, 60 s, 120 s (±20 %) later it goes through.
    wait(10 * MIN).await;
    let to_ben = rig
        .notifier
        .sent_to()
        .iter()
        .filter(|e| *e == "ben@example.com")
        .count();
    assert_eq!(to_ben, 1, "delivered exactly once");
    let deliveries = rig.store.deliveries(1).await.unwrap();
    let ben = deliveries
        .iter()
        .find(|d| d.recipient.email() == "ben@example.com")
        .unwrap();
    assert_eq!((ben.state, ben.attempts), (DeliveryState::Sent, 4));
    assert_eq!(rig.notifier.attempts(), 6);
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_fails_only_that_recipient() {
    let rig = Rig::new("81.2.69.160");
    rig.notifier
        .fail_next("cho@example.com", usize::MAX, FailureKind::Permanent);
    let handle = rig.spawn();
    wait(10 * MIN).await;
    let counts = rig.counts().await;
    assert_eq!((counts.sent, counts.failed, counts.pending), (2, 1, 0));
    assert_eq!(
        rig.notifier.attempts(),
        3,
        "a permanent failure is tried once"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn transient_failures_give_up_after_the_deadline() {
    let rig = Rig::new("81.2.69.160");
    rig.notifier
        .fail_next("ana@example.com", usize::MAX, FailureKind::Transient);
    let handle = rig.spawn();
    wait(Duration::from_secs(23 * 3600)).await;
    assert_eq!(
        rig.counts().await.failed,
        0,
        "still retrying before give_up_after"
    );
    wait(Duration::from_secs(2 * 3600)).await;
    let counts = rig.counts().await;
    assert_eq!((counts.sent, counts.failed, counts.pending), (2, 1, 0));
    // 30 s doubling to the 1 h cap: about 7 attempts in the first 2 h, then about one an hour.
    let attempts = rig
        .store
        .deliveries(1)
        .await
        .unwrap()
        .iter()
        .map(|d| d.attempts)
        .max()
        .unwrap();
    assert!((25..=35).contains(&attempts), "{attempts} attempts in 24 h");
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_newer_change_supersedes_pending_deliveries() {
    let rig = Rig::new("81.2.69.160");
    rig.notifier
        .fail_next("ana@example.com", usize::MAX, FailureKind::Transient);
    let handle = rig.spawn();
    wait(Duration::from_secs(1)).await;
    rig.set("81.2.69.161");
    handle.check_now().await.unwrap();
    let old = rig.store.deliveries(1).await.unwrap();
    let ana_old = old
        .iter()
        .find(|d| d.recipient.email() == "ana@example.com")
        .unwrap();
    assert_eq!(ana_old.state, DeliveryState::Superseded);
    rig.notifier
        .fail_next("ana@example.com", 0, FailureKind::Transient);
    wait(10 * MIN).await;
    let to_ana: Vec<_> = rig
        .notifier
        .sent()
        .into_iter()
        .filter(|(_, r)| r.email() == "ana@example.com")
        .map(|(n, _)| n.url)
        .collect();
    assert_eq!(
        to_ana,
        ["http://81.2.69.161:8008/"],
        "the stale URL is never sent"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restart_on_the_same_store_resumes_pending_deliveries() {
    let rig = Rig::new("81.2.69.160");
    rig.notifier
        .fail_next("ana@example.com", usize::MAX, FailureKind::Transient);
    let first = rig.spawn();
    wait(Duration::from_secs(1)).await;
    first.shutdown().await.unwrap();
    assert_eq!(rig.counts().await.pending, 1);

    let notifier = RecordingNotifier::new();
    let second = rig
        .monitor_with(MonitorConfig::default(), notifier.clone())
        .build()
        .unwrap()
        .spawn();
    wait(2 * MIN).await;
    assert_eq!(
        notifier.sent_to(),
        ["ana@example.com"],
        "the pending delivery is resumed, nothing else resent"
    );
    assert_eq!(rig.counts().await.sent, 3);
    second.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_crashed_holder_s_in_flight_deliveries_are_taken_over_after_the_ttl() {
    let rig = Rig::new("81.2.69.160");
    // A holder records a change, claims its deliveries, and dies before sending.
    let clock = TokioClock::new();
    let dead = Holder {
        id: "dead".into(),
        host: "h".into(),
        pid: 1,
    };
    let lease = rig
        .store
        .acquire_lease(&dead, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let staff = rig.staff.active().await.unwrap().valid;
    rig.store
        .record_change(
            &lease,
            clock.now(),
            NewChange {
                family: Family::V4,
                address: ip("81.2.69.160"),
                previous: None,
                url: "http://81.2.69.160:8008/".into(),
                kind: ChangeKind::Change,
            },
            &staff,
        )
        .await
        .unwrap();
    assert_eq!(
        rig.store
            .claim_deliveries(&lease, clock.now(), 10)
            .await
            .unwrap()
            .len(),
        3
    );

    let handle = rig.spawn();
    wait(Duration::from_secs(20)).await;
    assert_eq!(
        rig.notifier.attempts(),
        0,
        "nothing is sent while the dead holder's lease is valid"
    );
    wait(Duration::from_secs(30)).await;
    assert_eq!(
        rig.notifier.sent().len(),
        3,
        "taken over within ttl + heartbeat"
    );
    let counts = rig.counts().await;
    assert_eq!((counts.sent, counts.in_flight), (3, 0));
    assert_eq!(
        rig.store.history(10).await.unwrap().len(),
        1,
        "the address was already current"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn pause_and_resume_through_the_store() {
    let rig = Rig::new("81.2.69.160");
    let handle = rig.spawn();
    wait(Duration::from_secs(1)).await;
    // Another process (the CLI) sets the desired state.
    rig.store
        .set_desired_state(DesiredState::Paused)
        .await
        .unwrap();
    wait(Duration::from_secs(6)).await;
    assert_eq!(handle.status().state, RunState::Paused);
    let calls = rig.a.calls();
    rig.set("81.2.69.161");
    wait(2 * 3600 * Duration::from_secs(1)).await;
    assert_eq!(rig.a.calls(), calls, "a paused monitor asks nothing");
    assert_eq!(rig.store.history(10).await.unwrap().len(), 1);
    let row = rig.store.instances().await.unwrap().remove(0);
    assert_eq!(row.state, RunState::Paused, "the status row says paused");

    rig.store
        .set_desired_state(DesiredState::Running)
        .await
        .unwrap();
    wait(Duration::from_secs(6)).await;
    assert_eq!(handle.status().state, RunState::Running);
    assert_eq!(
        rig.store.history(10).await.unwrap().len(),
        2,
        "resuming checks at once"
    );
    assert_eq!(rig.counts().await.sent, 6);

    // The handle does the same.
    handle.pause().await.unwrap();
    wait(Duration::from_millis(10)).await;
    assert_eq!(
        rig.store.desired_state().await.unwrap(),
        DesiredState::Paused
    );
    assert_eq!(handle.status().state, RunState::Paused);
    handle.resume().await.unwrap();
    wait(Duration::from_millis(10)).await;
    assert_eq!(handle.status().state, RunState::Running);
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn two_monitors_on_one_store_only_the_lease_holder_sends() {
    let rig = Rig::new("81.2.69.160");
    let (n1, n2) = (RecordingNotifier::new(), RecordingNotifier::new());
    let m1 = rig
        .monitor_with(MonitorConfig::default(), n1.clone())
        .build()
        .unwrap()
        .spawn();
    let m2 = rig
        .monitor_with(MonitorConfig::default(), n2.clone())
        .build()
        .unwrap()
        .spawn();
    wait(5 * MIN).await;
    let (leader, standby, ln, sn) = if m1.status().leader {
        (m1, m2, n1, n2)
    } else {
        (m2, m1, n2, n1)
    };
    assert!(!standby.status().leader);
    assert_eq!(ln.sent().len(), 3);
    assert_eq!(sn.attempts(), 0, "the standby sends nothing");
    assert!(matches!(
        standby.check_now().await,
        Err(Error::NotLeader { holder: Some(_) })
    ));

    // The leader stops; the standby takes over at its next heartbeat and acts.
    leader.shutdown().await.unwrap();
    wait(Duration::from_secs(11)).await;
    assert!(standby.status().leader);
    rig.set("81.2.69.161");
    wait(2 * MIN).await;
    assert_eq!(sn.sent().len(), 3);
    assert_eq!(ln.sent().len(), 3);
    let rows = rig.store.instances().await.unwrap();
    assert_eq!(
        rows.iter().filter(|r| r.state == RunState::Stopped).count(),
        1
    );
    standby.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_sends_in_flight_then_releases_the_lease() {
    let rig = Rig::new("81.2.69.160");
    rig.notifier.set_delay(Some(Duration::from_secs(3)));
    let handle = rig.spawn();
    wait(Duration::from_millis(100)).await;
    assert_eq!(rig.counts().await.in_flight, 3);
    handle.shutdown().await.unwrap();
    assert_eq!(
        rig.counts().await.sent,
        3,
        "sends in flight finished and were recorded"
    );
    assert!(handle.is_finished());
    assert!(rig.store.lease().await.unwrap().is_none(), "lease released");
    let row = rig.store.instances().await.unwrap().remove(0);
    assert_eq!((row.state, row.leader), (RunState::Stopped, false));
    assert!(matches!(handle.check_now().await, Err(Error::Stopped)));
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_sends_past_the_grace_period() {
    let rig = Rig::new("81.2.69.160");
    rig.notifier.set_delay(Some(Duration::from_secs(60)));
    let handle = rig
        .monitor(MonitorConfig {
            shutdown_grace: Duration::from_secs(2),
            ..Default::default()
        })
        .build()
        .unwrap()
        .spawn();
    wait(Duration::from_millis(100)).await;
    handle.shutdown().await.unwrap();
    let counts = rig.counts().await;
    assert_eq!(
        (counts.sent, counts.in_flight),
        (0, 3),
        "abandoned sends stay in flight for the next holder"
    );
}

#[tokio::test(start_paused = true)]
async fn disagreement_records_nothing_and_shows_in_status() {
    let rig = Rig::new("81.2.69.160");
    rig.b.set(ip("81.2.69.99"));
    let handle = rig.spawn();
    wait(Duration::from_secs(1)).await;
    assert!(rig.store.history(10).await.unwrap().is_empty());
    let status = handle.status();
    assert!(
        status.last_error.as_deref().unwrap().contains("disagree"),
        "{:?}",
        status.last_error
    );
    assert_eq!(
        status.sources.iter().filter(|s| s.answer.is_some()).count(),
        2
    );
    let reports = handle.check_now().await.unwrap();
    assert!(matches!(reports[0].error, Some(Error::Check { .. })));
    // Sources that all fail: nothing recorded, then automatic recovery.
    rig.a.set_failure(Family::V4, "down");
    rig.b.set_failure(Family::V4, "down");
    wait(30 * MIN).await;
    assert!(rig.store.history(10).await.unwrap().is_empty());
    rig.set("81.2.69.160");
    wait(2 * 3600 * Duration::from_secs(1)).await;
    assert_eq!(
        rig.store.history(10).await.unwrap().len(),
        1,
        "recovers at the next full check"
    );
    assert!(handle.status().last_error.is_none());
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn confirmations_delay_a_change_until_checks_agree() {
    let rig = Rig::new("81.2.69.160");
    let handle = rig
        .monitor(MonitorConfig {
            confirmations: 2,
            ..Default::default()
        })
        .build()
        .unwrap()
        .spawn();
    let mut events = handle.subscribe();
    wait(Duration::from_secs(1)).await;
    assert!(
        rig.store.history(10).await.unwrap().is_empty(),
        "one check is not enough"
    );
    assert!(matches!(events.try_recv(), Ok(Event::LeaseAcquired { .. })));
    assert!(matches!(events.try_recv(), Ok(Event::Checked { .. })));
    assert!(matches!(
        events.try_recv(),
        Ok(Event::Confirming {
            seen: 1,
            needed: 2,
            ..
        })
    ));
    wait(MIN + Duration::from_secs(5)).await;
    assert_eq!(
        rig.store.history(10).await.unwrap().len(),
        1,
        "confirmed at the next check"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn notify_on_first_off_records_silently() {
    let rig = Rig::new("81.2.69.160");
    let handle = rig
        .monitor(MonitorConfig {
            notify_on_first: false,
            ..Default::default()
        })
        .build()
        .unwrap()
        .spawn();
    wait(Duration::from_secs(1)).await;
    assert_eq!(rig.store.history(10).await.unwrap()[0].deliveries, 0);
    rig.set("81.2.69.161");
    handle.check_now().await.unwrap();
    wait(Duration::from_secs(1)).await;
    assert_eq!(rig.notifier.sent().len(), 3, "later changes are notified");
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn invalid_recipient_rows_are_skipped_and_the_others_delivered() {
    let rig = Rig::new("81.2.69.160");
    rig.staff.set([
        ("ana@example.com", None::<&str>),
        ("evil@example.com\r\nBcc: all@example.com", None),
        ("not-an-address", None),
        ("ben@example.com", None),
    ]);
    let handle = rig.spawn();
    wait(Duration::from_secs(1)).await;
    let mut to = rig.notifier.sent_to();
    to.sort();
    assert_eq!(to, ["ana@example.com", "ben@example.com"]);
    let history = rig.store.history(10).await.unwrap();
    assert_eq!(history[0].deliveries, 2);
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn recipient_rejections_are_reported() {
    let rig = Rig::new("81.2.69.160");
    rig.staff.set([
        ("ana@example.com", None::<&str>),
        ("bad\n@example.com", None),
    ]);
    let handle = rig
        .monitor(MonitorConfig::default())
        .build()
        .unwrap()
        .spawn();
    let mut events = handle.subscribe();
    wait(Duration::from_secs(1)).await;
    let mut rejected = 0;
    while let Ok(e) = events.try_recv() {
        if let Event::RecipientRejected(r) = e {
            assert!(r.reason.contains("control"), "{r}");
            rejected += 1;
        }
    }
    assert_eq!(rejected, 1, "one event per rejected row");
    rig.set("81.2.69.161");
    let reports = handle.check_now().await.unwrap();
    assert_eq!(
        reports[0].rejected_recipients.len(),
        1,
        "the report lists the skipped rows"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn no_busy_polling_between_checks() {
    let rig = Rig::new("81.2.69.160");
    let handle = rig
        .monitor(MonitorConfig {
            probe_interval: Duration::ZERO,
            ..Default::default()
        })
        .build()
        .unwrap()
        .spawn();
    wait(Duration::from_secs(1)).await;
    let calls = rig.a.calls();
    wait(59 * MIN).await;
    assert_eq!(
        rig.a.calls(),
        calls,
        "probes off: no source request between full checks"
    );
    wait(2 * MIN).await;
    assert_eq!(rig.a.calls(), calls + 1, "the hourly full check");
    handle.shutdown().await.unwrap();
}

#[test]
fn bad_configuration_names_the_key() {
    let rig = Rig::new("81.2.69.160");
    let cases: Vec<(MonitorConfig, &str)> = vec![
        (
            MonitorConfig {
                families: vec![],
                ..Default::default()
            },
            "families",
        ),
        (
            MonitorConfig {
                interval: Duration::ZERO,
                ..Default::default()
            },
            "interval",
        ),
        (
            MonitorConfig {
                interval: Duration::from_secs(u64::MAX / 4),
                ..Default::default()
            },
            "interval",
        ),
        (
            MonitorConfig {
                heartbeat: Duration::MAX,
                ..Default::default()
            },
            "heartbeat",
        ),
        (
            MonitorConfig {
                delivery: DeliveryPolicy {
                    give_up_after: Duration::from_secs(100 * 365 * 86_400),
                    ..Default::default()
                },
                ..Default::default()
            },
            "delivery.give_up_after",
        ),
        (
            MonitorConfig {
                confirmations: 0,
                ..Default::default()
            },
            "confirmations",
        ),
        (
            MonitorConfig {
                service_url: "http://example.com/".into(),
                ..Default::default()
            },
            "service_url",
        ),
        (
            MonitorConfig {
                lease_ttl: Some(Duration::from_secs(5)),
                ..Default::default()
            },
            "lease_ttl",
        ),
        (
            MonitorConfig {
                delivery: DeliveryPolicy {
                    parallelism: 0,
                    ..Default::default()
                },
                ..Default::default()
            },
            "delivery.parallelism",
        ),
    ];
    for (config, key) in cases {
        match rig.monitor(config).build() {
            Err(Error::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: {other:?}"),
        }
    }
    let err = Monitor::builder(
        SourceSet::new(vec![Arc::new(rig.a.clone())]).quorum(3),
        MemoryStore::new(),
        StaticRecipients::default(),
        RecordingNotifier::new(),
    )
    .build()
    .unwrap_err();
    assert!(err.to_string().contains("sources.quorum"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn check_once_records_sends_what_is_due_and_releases_the_lease() {
    let rig = Rig::new("81.2.69.160");
    rig.notifier
        .fail_next("ben@example.com", 1, FailureKind::Transient);
    let reports = rig
        .monitor(MonitorConfig::default())
        .build()
        .unwrap()
        .check_once()
        .await
        .unwrap();
    let change = reports[0]
        .change
        .as_ref()
        .expect("the first address is a change");
    assert_eq!(change.deliveries, 3);
    let counts = rig.counts().await;
    assert_eq!(
        (counts.sent, counts.pending, counts.in_flight),
        (2, 1, 0),
        "the retry waits in the outbox"
    );
    assert!(rig.store.lease().await.unwrap().is_none(), "lease released");
    let rows = rig.store.instances().await.unwrap();
    assert_eq!(rows.len(), 1, "a one-shot check leaves its status row");
    assert_eq!(rows[0].state, RunState::Stopped);
    assert!(
        rows[0].last_check_at.is_some() && !rows[0].sources.is_empty(),
        "the row shows the check and each source's answer: {:?}",
        rows[0]
    );

    // A running monitor holds the lease: a one-shot check is refused and says by whom.
    let handle = rig.spawn();
    wait(Duration::from_secs(1)).await;
    let err = rig
        .monitor(MonitorConfig::default())
        .build()
        .unwrap()
        .check_once()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotLeader { holder: Some(_) }), "{err}");
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn send_test_goes_through_the_outbox_with_retries_and_changes_nothing() {
    let rig = Rig::new("81.2.69.160");
    let first = rig.spawn();
    wait(Duration::from_secs(1)).await;
    first.shutdown().await.unwrap();
    rig.notifier
        .fail_next("ana@example.com", 2, FailureKind::Transient);
    rig.notifier
        .fail_next("cho@example.com", 1, FailureKind::Permanent);
    let (change, outcome) = rig
        .monitor(MonitorConfig::default())
        .build()
        .unwrap()
        .send_test(ip("81.2.69.200"))
        .await
        .unwrap();
    assert_eq!(change.kind, ChangeKind::Test);
    let deliveries = rig.store.deliveries(change.id).await.unwrap();
    assert_eq!(outcome, ChangeOutcome::of(deliveries.clone()));
    assert_eq!((outcome.counts.sent, outcome.counts.failed), (2, 1));
    let states: Vec<_> = deliveries
        .iter()
        .map(|d| (d.recipient.email().to_owned(), d.state, d.attempts))
        .collect();
    assert!(
        states.contains(&("ana@example.com".into(), DeliveryState::Sent, 3)),
        "{states:?}"
    );
    assert!(
        states.contains(&("cho@example.com".into(), DeliveryState::Failed, 1)),
        "{states:?}"
    );
    let test_sends: Vec<_> = rig
        .notifier
        .sent()
        .into_iter()
        .filter(|(n, _)| n.test)
        .collect();
    assert_eq!(test_sends.len(), 2);
    assert!(
        test_sends
            .iter()
            .all(|(n, _)| n.url == "http://81.2.69.200:8008/")
    );
    assert_eq!(
        rig.store
            .current(Family::V4)
            .await
            .unwrap()
            .unwrap()
            .address,
        ip("81.2.69.160"),
        "current unchanged"
    );
}

#[tokio::test(start_paused = true)]
async fn transient_failures_follow_the_backoff_schedule_until_give_up() {
    let rig = Rig::new("81.2.69.160");
    rig.notifier
        .fail_next("ana@example.com", usize::MAX, FailureKind::Transient);
    rig.notifier
        .fail_next("ben@example.com", usize::MAX, FailureKind::Permanent);
    let policy = DeliveryPolicy::default();
    let started = tokio::time::Instant::now();
    let handle = rig.spawn();
    wait(Duration::from_secs(3 * 24 * 3600)).await;
    let times = rig.notifier.attempt_times("ana@example.com");
    assert!(times.len() > 10, "{} attempts", times.len());
    let deadline = started + policy.give_up_after;
    for (k, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let nominal = policy.backoff(k as u32 + 1);
        let last = pair[1] >= deadline - Duration::from_secs(1);
        if last {
            // The final attempt is clamped to give_up_after.
            assert!(
                gap <= nominal.mul_f64(1.2) + Duration::from_secs(1),
                "last gap {gap:?}"
            );
        } else {
            assert!(
                gap >= nominal.mul_f64(0.8) - Duration::from_secs(1)
                    && gap <= nominal.mul_f64(1.2) + Duration::from_secs(1),
                "gap {k}: {gap:?}, nominal {nominal:?}"
            );
        }
    }
    let last = *times.last().unwrap();
    assert!(
        last >= deadline - Duration::from_secs(1) && last <= deadline + Duration::from_secs(2),
        "ends at give_up_after"
    );
    let ds = rig.store.deliveries(1).await.unwrap();
    let ana = ds
        .iter()
        .find(|d| d.recipient.email() == "ana@example.com")
        .unwrap();
    assert_eq!(ana.state, DeliveryState::Failed);
    assert!(
        ana.last_error.as_deref().unwrap().contains("gave up"),
        "{:?}",
        ana.last_error
    );
    assert_eq!(
        rig.notifier.attempt_times("ben@example.com").len(),
        1,
        "5xx: one attempt"
    );
    handle.shutdown().await.unwrap();
}

/// Staff whose query takes longer than the lease's ttl.
#[derive(Debug, Clone)]
struct SlowStaff {
    inner: StaticRecipients,
    delay: Duration,
}

#[async_trait]
impl Recipients for SlowStaff {
    async fn active(&self) -> std::result::Result<RecipientList, RecipientsError> {
        tokio::time::sleep(self.delay).await;
        self.inner.active().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_recipients_query_does_not_starve_the_lease() {
    let rig = Rig::new("81.2.69.160");
    let config = MonitorConfig::default();
    let ttl = config.effective_lease_ttl();
    let handle = Monitor::builder(
        SourceSet::new(vec![Arc::new(rig.a.clone()), Arc::new(rig.b.clone())]),
        rig.store.clone(),
        SlowStaff {
            inner: rig.staff.clone(),
            delay: ttl * 3,
        },
        rig.notifier.clone(),
    )
    .config(config)
    .clock(TokioClock::new())
    .build()
    .unwrap()
    .spawn();
    let mut events = handle.subscribe();
    wait(ttl * 5).await;
    let counts = rig.counts().await;
    assert_eq!(
        counts.sent, 3,
        "the change was recorded and delivered: {counts:?}"
    );
    let mut acquired = 0;
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, Event::LeaseLost),
            "the lease lapsed while the recipients query ran"
        );
        acquired += matches!(e, Event::LeaseAcquired { .. }) as usize;
    }
    assert_eq!(acquired, 1, "acquired once and kept");
    handle.shutdown().await.unwrap();
}
