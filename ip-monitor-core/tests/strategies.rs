//! Strategies over real HTTP sources on loopback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ip_monitor_core::{CheckError, Family, HttpIpSource, IpSource, SourceSet, Strategy};
use ip_monitor_testkit::{Behavior, HttpServer};

const TIMEOUT: Duration = Duration::from_secs(6);

fn sources(servers: &[&HttpServer]) -> Vec<Arc<dyn IpSource>> {
    servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Arc::new(
                HttpIpSource::builder(s.url())
                    .name(format!("s{i}"))
                    .build()
                    .unwrap(),
            ) as Arc<dyn IpSource>
        })
        .collect()
}

#[tokio::test]
async fn quorum_does_not_wait_for_a_black_holed_source() {
    let hole = HttpServer::start("127.0.0.1:0", Behavior::BlackHole).await;
    let a = HttpServer::start(
        "127.0.0.1:0",
        Behavior::ok_after("81.2.69.160", Duration::from_millis(50)),
    )
    .await;
    let b = HttpServer::start(
        "127.0.0.1:0",
        Behavior::ok_after("81.2.69.160", Duration::from_millis(80)),
    )
    .await;
    let set = SourceSet::new(sources(&[&hole, &a, &b])).timeout(TIMEOUT);
    assert_eq!(set.effective_quorum(), 2);
    let started = Instant::now();
    let outcome = set.check(Family::V4).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.result.unwrap().to_string(), "81.2.69.160");
    assert!(
        elapsed < TIMEOUT / 2,
        "quorum returned after {elapsed:?}: it waited for the black hole"
    );
    assert!(
        outcome.reports[0].result.is_none(),
        "the black hole is reported as not awaited"
    );
    assert!(outcome.reports[1].latency.is_some() && outcome.reports[2].latency.is_some());

    // Fallback with the black hole first must wait for its timeout.
    let set = SourceSet::new(sources(&[&hole, &a, &b]))
        .strategy(Strategy::Fallback)
        .timeout(Duration::from_secs(1));
    let started = Instant::now();
    let outcome = set.check(Family::V4).await;
    assert_eq!(outcome.result.unwrap().to_string(), "81.2.69.160");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "fallback asks in order"
    );
    assert!(
        outcome.reports[2].result.is_none(),
        "fallback stops at the first valid answer"
    );
}

#[tokio::test]
async fn disagreement_is_an_error() {
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160")).await;
    let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.161")).await;
    let set = SourceSet::new(sources(&[&a, &b])).timeout(TIMEOUT);
    let outcome = set.check(Family::V4).await;
    match outcome.result {
        Err(CheckError::Disagreement { answers, quorum: 2 }) => assert_eq!(answers.len(), 2),
        other => panic!("{other:?}"),
    }
    assert!(
        outcome
            .reports
            .iter()
            .all(|r| matches!(r.result, Some(Ok(_)))),
        "status keeps each answer"
    );
}

#[tokio::test]
async fn too_few_answers_is_an_error_and_first_takes_the_first_valid() {
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160")).await;
    let bad = HttpServer::start("127.0.0.1:0", Behavior::ok("garbage")).await;
    let set = SourceSet::new(sources(&[&a, &bad])).timeout(TIMEOUT);
    let outcome = set.check(Family::V4).await;
    assert_eq!(
        outcome.result,
        Err(CheckError::TooFewAnswers { needed: 2, got: 1 })
    );

    let slow = HttpServer::start(
        "127.0.0.1:0",
        Behavior::ok_after("81.2.69.161", Duration::from_secs(3)),
    )
    .await;
    let set = SourceSet::new(sources(&[&slow, &bad, &a]))
        .strategy(Strategy::First)
        .timeout(TIMEOUT);
    let started = Instant::now();
    let outcome = set.check(Family::V4).await;
    assert_eq!(outcome.result.unwrap().to_string(), "81.2.69.160");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "first does not wait for the slow source"
    );
}
