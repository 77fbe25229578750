//! Progress and health of the archiver as Prometheus metrics
//! (`flow_archiver_*`): rows, bytes and files committed, rows pending in the
//! open file, lag behind the source, events the source reported lost, gaps
//! recorded and source errors.

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
        }
    }
    /// The writer's figures.
    pub fn writer(&self, s: &WriterStats) {
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
