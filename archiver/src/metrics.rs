//! Progress and health of the archiver as Prometheus metrics
//! (`flow_archiver_*`): rows, bytes and files committed, rows pending in the
//! open file, lag behind the source, events the source reported lost, gaps
//! recorded and source errors; whether the source stream is up, and the
//! times of the newest flow received and of the last commit (so "falling
//! behind" is seen also when no flow arrives at all: the lag gauge only
//! moves with flows).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use proto::wkt::Timestamp;

use crate::writer::WriterStats;

/// The archiver's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rows: Gauge<u64, AtomicU64>,
    bytes: Gauge<u64, AtomicU64>,
    files: Gauge<u64, AtomicU64>,
    pending: Gauge<u64, AtomicU64>,
    received: Counter,
    lag_ms: Gauge,
    lost: Counter,
    gaps: Counter,
    errors: Counter,
    connected: Gauge,
    newest_flow: Gauge<f64, AtomicU64>,
    last_commit: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            rows: Gauge::default(),
            bytes: Gauge::default(),
            files: Gauge::default(),
            pending: Gauge::default(),
            received: Counter::default(),
            lag_ms: Gauge::default(),
            lost: Counter::default(),
            gaps: Counter::default(),
            errors: Counter::default(),
            connected: Gauge::default(),
            newest_flow: Gauge::default(),
            last_commit: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "flow_archiver_rows_written",
            "Rows committed to archive files by this process",
            m.rows.clone(),
        );
        r.register(
            "flow_archiver_bytes_written",
            "Bytes of archive files committed by this process",
            m.bytes.clone(),
        );
        r.register(
            "flow_archiver_files_written",
            "Archive files committed by this process",
            m.files.clone(),
        );
        r.register(
            "flow_archiver_rows_pending",
            "Rows in the open file, not yet committed",
            m.pending.clone(),
        );
        r.register(
            "flow_archiver_flows_received",
            "Flows received from the source",
            m.received.clone(),
        );
        r.register(
            "flow_archiver_lag_milliseconds",
            "Now minus the time of the newest flow received",
            m.lag_ms.clone(),
        );
        r.register(
            "flow_archiver_source_lost_events",
            "Events the source reported lost",
            m.lost.clone(),
        );
        r.register(
            "flow_archiver_gaps",
            "Gaps recorded in _archive/gaps.jsonl",
            m.gaps.clone(),
        );
        r.register(
            "flow_archiver_source_errors",
            "Failed connections and streams",
            m.errors.clone(),
        );
        r.register(
            "flow_archiver_source_connected",
            "1 while the follow stream from the source is open",
            m.connected.clone(),
        );
        r.register(
            "flow_archiver_newest_flow_timestamp_seconds",
            "Time of the newest flow received (Unix seconds, 0 before the first)",
            m.newest_flow.clone(),
        );
        r.register(
            "flow_archiver_last_commit_timestamp_seconds",
            "When this process last committed a file (Unix seconds, 0 before the first)",
            m.last_commit.clone(),
        );
        m
    }
}

impl Metrics {
    /// A flow was appended.
    pub fn appended(&self, t: Option<Timestamp>) {
        self.received.inc();
        if let Some(t) = t {
            let lag = (Timestamp::now().as_unix_nanos() - t.as_unix_nanos()) / 1_000_000;
            self.lag_ms.set(lag.clamp(0, i64::MAX as i128) as i64);
            self.newest_flow.set(t.as_unix_nanos() as f64 / 1e9);
        }
    }
    /// The follow stream opened (`true`) or ended (`false`).
    pub fn connected(&self, up: bool) {
        self.connected.set(i64::from(up));
    }
    /// The writer's figures.
    pub fn writer(&self, s: &WriterStats) {
        if s.files > self.files.get() {
            self.last_commit
                .set(Timestamp::now().as_unix_nanos() as f64 / 1e9);
        }
        self.rows.set(s.rows);
        self.bytes.set(s.bytes);
        self.files.set(s.files);
        self.pending.set(s.pending_rows);
    }
    /// The source reported lost events.
    pub fn lost(&self, n: u64) {
        self.lost.inc_by(n);
    }
    /// A gap was recorded.
    pub fn gap(&self) {
        self.gaps.inc();
    }
    /// A connection or stream failed.
    pub fn source_error(&self) {
        self.errors.inc();
    }
    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_newest_flow_and_commit_are_exported() {
        let m = Metrics::default();
        m.connected(true);
        m.appended(Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }));
        m.writer(&WriterStats {
            files: 1,
            ..Default::default()
        });
        let t = m.encode();
        for want in [
            "flow_archiver_source_connected 1",
            "flow_archiver_newest_flow_timestamp_seconds 1700000000.0",
            "flow_archiver_files_written 1",
        ] {
            assert!(t.contains(want), "missing {want} in\n{t}");
        }
        assert!(
            !t.contains("flow_archiver_last_commit_timestamp_seconds 0.0"),
            "{t}"
        );
    }
}
