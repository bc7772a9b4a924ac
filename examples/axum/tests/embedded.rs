//! The axum example on 127.0.0.1: both routes answer, SIGTERM stops it, the store says so.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_serves_and_stops_gracefully() {
    ip_monitor_testkit::embedded::check_example(env!("CARGO_BIN_EXE_ip-monitor-example-axum"))
        .await;
}
