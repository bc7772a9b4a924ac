//! Benchmarks for ip-monitor.
