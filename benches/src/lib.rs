//! Benchmarks for ip-monitor. The criterion benches are in `benches/`; run them with
//! `cargo bench -p ip-monitor-benches`. Figures are kept in `docs/performance.md`.
