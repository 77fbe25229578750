//! `--replay FILE`: Hubble jsonpb lines, as `hubble observe -o json` and
//! Hubble's flow-log exporter write them, loaded as if observed. Every field
//! is kept as recorded (time, uuid, node_name). Lines may be
//! `GetFlowsResponse`/`ExportEvent` objects (`{"flow":…}`) or, from
//! `HUBBLE_COMPAT=legacy-json-output` and older CLIs, bare flows. Lost-event
//! lines are kept; node-status, agent and debug events are skipped and
//! counted. A malformed line is an error naming its line number.

use std::io::BufRead;
use std::path::Path;

use proto::flow::{Flow, LostEvent};
use proto::observer::{ExportEvent, export_event::ResponseTypes};

use crate::defaults;
use crate::pipeline::{Batch, Ingest};
use crate::progress::Watermark;
use proto::wkt::Timestamp;

/// What a replay file holds, in file order.
#[derive(Debug, Default)]
pub struct Replay {
    /// Flows and lost events in file order.
    pub events: Vec<ReplayEvent>,
    /// Lines that held other event kinds (node status, agent, debug).
    pub skipped: u64,
}

/// One replayed event.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "flows dominate replay files")]
pub enum ReplayEvent {
    /// A flow.
    Flow(Flow),
    /// A lost-events record.
    Lost(LostEvent),
}

/// A replay file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a Hubble jsonpb event.
    #[error("{path}:{line}: not a Hubble flow JSON line: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
}

/// Parses one line. `Ok(None)` for blank lines and skipped kinds.
pub fn parse_line(line: &str) -> Result<Option<ReplayEvent>, String> {
    let t = line.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let v: serde_json::Value = serde_json::from_str(t).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("expected a JSON object")?;
    let wrapped = [
        "flow",
        "lost_events",
        "lostEvents",
        "node_status",
        "nodeStatus",
        "agent_event",
        "debug_event",
    ]
    .iter()
    .any(|k| obj.contains_key(*k));
    if wrapped {
        let ev: ExportEvent = serde_json::from_value(v).map_err(|e| e.to_string())?;
        return Ok(match ev.response_types {
            Some(ResponseTypes::Flow(f)) => Some(ReplayEvent::Flow(f)),
            Some(ResponseTypes::LostEvents(l)) => Some(ReplayEvent::Lost(l)),
            _ => None,
        });
    }
    let f: Flow = serde_json::from_value(v).map_err(|e| e.to_string())?;
    if f.time.is_none() {
        return Err("flow has no time".into());
    }
    Ok(Some(ReplayEvent::Flow(f)))
}

/// Loads a whole file (or `-` for stdin), failing on the first bad line.
pub fn load(path: &Path) -> Result<Replay, ReplayError> {
    let name = path.display().to_string();
    let reader: Box<dyn BufRead> = if name == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(path).map_err(|source| ReplayError::Io {
            path: name.clone(),
            source,
        })?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut out = Replay::default();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| ReplayError::Io {
            path: name.clone(),
            source,
        })?;
        match parse_line(&line) {
            Ok(Some(ev)) => out.events.push(ev),
            Ok(None) if line.trim().is_empty() => {}
            Ok(None) => out.skipped += 1,
            Err(reason) => {
                return Err(ReplayError::Malformed {
                    path: name,
                    line: i + 1,
                    reason,
                });
            }
        }
    }
    Ok(out)
}

/// Feeds a loaded replay file into the pipeline in file order, flows in
/// batches of up to [`defaults::SOURCE_BATCH`], waiting for room (a replay
/// loses nothing).
pub async fn feed(r: Replay, ingest: Ingest) -> anyhow::Result<()> {
    let mut flows = Vec::with_capacity(defaults::SOURCE_BATCH);
    for ev in r.events {
        match ev {
            ReplayEvent::Flow(f) => {
                flows.push(f);
                if flows.len() >= defaults::SOURCE_BATCH {
                    let b = std::mem::take(&mut flows);
                    ingest
                        .send(Batch::Flows(b))
                        .await
                        .map_err(|()| anyhow::anyhow!("pipeline stopped"))?;
                }
            }
            ReplayEvent::Lost(l) => {
                if !flows.is_empty() {
                    let b = std::mem::take(&mut flows);
                    ingest
                        .send(Batch::Flows(b))
                        .await
                        .map_err(|()| anyhow::anyhow!("pipeline stopped"))?;
                }
                let source = proto::flow::LostEventSource::try_from(l.source)
                    .unwrap_or(proto::flow::LostEventSource::UnknownLostEventSource);
                let cpu = l.cpu.map(|c| c.value);
                ingest
                    .send(Batch::Lost {
                        source,
                        count: l.num_events_lost,
                        cpu,
                    })
                    .await
                    .map_err(|()| anyhow::anyhow!("pipeline stopped"))?;
            }
        }
    }
    if !flows.is_empty() {
        ingest
            .send(Batch::Flows(flows))
            .await
            .map_err(|()| anyhow::anyhow!("pipeline stopped"))?;
    }
    tracing::info!("replay file fed into the ring");
    Ok(())
}

/// [`feed`], then, as nothing more will come, the wall clock as the
/// watermark every [`defaults::PROGRESS_TICK`] ([`crate::progress`]) until
/// the pipeline stops. No watermark is given while the file is fed: its
/// flows carry recorded times in file order, not in time order.
pub async fn feed_then_progress(r: Replay, ingest: Ingest) -> anyhow::Result<()> {
    feed(r, ingest.clone()).await?;
    let mut tick = tokio::time::interval(defaults::PROGRESS_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !ingest.is_closed() {
        tick.tick().await;
        ingest.offer(Batch::Progress(Watermark::Wall(Timestamp::now())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    const FLOW: &str = r#"{"flow":{"time":"2024-05-01T10:00:00.123456789Z","uuid":"u-1","verdict":"DROPPED","IP":{"source":"10.0.0.1","destination":"10.0.0.2","ipVersion":"IPv4"},"Type":"L3_L4","node_name":"kind/kind-worker","drop_reason_desc":"POLICY_DENIED","Summary":"TCP Flags: SYN"},"node_name":"kind/kind-worker","time":"2024-05-01T10:00:00.123456789Z"}"#;

    #[test]
    fn keeps_every_recorded_field() {
        let Some(ReplayEvent::Flow(f)) = parse_line(FLOW).unwrap() else {
            panic!("no flow")
        };
        assert_eq!(f.uuid, "u-1");
        assert_eq!(f.node_name, "kind/kind-worker");
        assert_eq!(f.time.unwrap().nanos, 123_456_789);
        assert_eq!(f.summary, "TCP Flags: SYN");
        let back = proto::json::to_hubble_json(&proto::observer::GetFlowsResponse {
            node_name: f.node_name.clone(),
            time: f.time,
            response_types: Some(proto::observer::get_flows_response::ResponseTypes::Flow(f)),
        })
        .unwrap();
        assert_eq!(back, FLOW);
    }

    #[test]
    fn bare_legacy_flows_and_lost_events() {
        let bare = r#"{"time":"2024-05-01T10:00:00Z","verdict":"FORWARDED"}"#;
        assert!(matches!(
            parse_line(bare).unwrap(),
            Some(ReplayEvent::Flow(_))
        ));
        let lost = r#"{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"3","cpu":1},"node_name":"n","time":"2024-05-01T10:00:00Z"}"#;
        let Some(ReplayEvent::Lost(l)) = parse_line(lost).unwrap() else {
            panic!("no lost")
        };
        assert_eq!(l.num_events_lost, 3);
        let status = r#"{"node_status":{"state_change":"NODE_CONNECTED","node_names":["a"]},"time":"2024-05-01T10:00:00Z"}"#;
        assert!(parse_line(status).unwrap().is_none());
    }

    #[test]
    fn malformed_line_names_its_number() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "{FLOW}\n\n{{\"flow\": 12}}").unwrap();
        let e = load(f.path()).unwrap_err().to_string();
        assert!(e.contains(":3: not a Hubble flow JSON line"), "{e}");
    }
}
