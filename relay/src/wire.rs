//! GetFlows responses as the bytes a peer sent: the relay only reorders the
//! peers' flows and passes their lost events on, so it forwards each
//! response's encoded bytes instead of decoding it into a message and
//! encoding it again (issue 14: the decode and re-encode were most of the
//! relay's cost per flow).
//!
//! - [`PeerCodec`] is the client codec of the relay's GetFlows calls to its
//!   peers: each response arrives as a [`PeerResponse`], its bytes plus the
//!   few fields the merge needs, read by [`scan`] (a minimal protobuf field
//!   scanner over the top level of `GetFlowsResponse`).
//! - [`Out`] is what the relay queues for a client: a peer's bytes, or a
//!   message the relay built itself (node status, its own lost events,
//!   aggregated `NODE_ERROR`). [`RelayCodec`] writes both on
//!   `/observer.Observer/GetFlows` (the bytes as they are, a message as
//!   tonic's prost codec would).
//!
//! The relay changes nothing in a peer's response (it never filled in
//! `node_name` or anything else), so the bytes it sends for our exporter's
//! flows are the ones it sent when it decoded and re-encoded them: prost's
//! encoding of a decoded prost encoding is the same bytes
//! (`tests/forwarded_bytes.rs`). A peer's unknown fields (a newer agent's)
//! are now passed on instead of dropped, as Hubble's relay does.
//!
//! What [`scan`] checks: the response's top level is well-formed protobuf
//! (keys, lengths, wire types of the known fields), `node_name` is UTF-8
//! and the timestamps decode. The inside of a flow, a node status or a
//! lost event is not validated (that was the decode this module avoids);
//! the client decodes it.

use std::ops::Range;

use prost::Message as _;
use prost::bytes::{Buf, Bytes};
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use proto::observer::get_flows_response::ResponseTypes;
use proto::observer::{GetFlowsRequest, GetFlowsResponse};
use proto::wkt::Timestamp;
use tonic::Status;
use tonic::codec::{DecodeBuf, EncodeBuf};

/// Field numbers of `observer.GetFlowsResponse`.
const FLOW: u32 = 1;
const NODE_STATUS: u32 = 2;
const LOST_EVENTS: u32 = 3;
const NODE_NAME: u32 = 1000;
const TIME: u32 = 1001;
/// Field number of `flow.Flow.time`.
const FLOW_TIME: u32 = 1;

/// Which `response_types` variant a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// None: our exporter's progress marker.
    None,
    /// `flow` (1).
    Flow,
    /// `node_status` (2): a peer that is itself a relay.
    NodeStatus,
    /// `lost_events` (3).
    LostEvents,
}

/// What [`scan`] read from an encoded `GetFlowsResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// The `response_types` variant.
    pub kind: Kind,
    /// The response's `time` (1001), if set.
    pub time: Option<Timestamp>,
    /// The flow's own `time` when the response is a flow and has no
    /// `time` of its own (read only then).
    pub flow_time: Option<Timestamp>,
    /// Where `node_name` (1000) is in the bytes, if set.
    pub node_name: Option<Range<usize>>,
}

impl Scanned {
    /// The time the merge orders by, as `merge::response_time` computes it
    /// for a decoded message: the response's `time`, else its flow's.
    pub fn order_time(&self) -> Timestamp {
        self.time.or(self.flow_time).unwrap_or_default()
    }
}

/// Why bytes are not a `GetFlowsResponse`.
#[derive(Debug, thiserror::Error)]
#[error("malformed GetFlowsResponse: {0}")]
pub struct ScanError(String);

impl From<prost::DecodeError> for ScanError {
    fn from(e: prost::DecodeError) -> Self {
        ScanError(e.to_string())
    }
}

/// The length-delimited payload at the front of `buf`, as a range of
/// `whole` (`buf` is a suffix of `whole`), consumed from `buf`.
fn length_delimited(whole: &[u8], buf: &mut &[u8]) -> Result<Range<usize>, ScanError> {
    let len = decode_varint(buf)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= buf.len())
        .ok_or_else(|| ScanError("buffer underflow".into()))?;
    let start = whole.len() - buf.len();
    buf.advance(len);
    Ok(start..start + len)
}

fn expect_len_delimited(tag: u32, wt: WireType) -> Result<(), ScanError> {
    if wt == WireType::LengthDelimited {
        Ok(())
    } else {
        Err(ScanError(format!(
            "field {tag}: invalid wire type {wt:?} (expected LengthDelimited)"
        )))
    }
}

/// Reads the fields the merge needs from an encoded `GetFlowsResponse`,
/// with prost's semantics for repeated occurrences (a later oneof variant
/// replaces an earlier one, occurrences of a message field merge).
pub fn scan(bytes: &[u8]) -> Result<Scanned, ScanError> {
    let mut buf = bytes;
    let mut kind = Kind::None;
    let mut time: Option<Timestamp> = None;
    let mut node_name = None;
    while buf.has_remaining() {
        let (tag, wt) = decode_key(&mut buf)?;
        match tag {
            FLOW | NODE_STATUS | LOST_EVENTS => {
                expect_len_delimited(tag, wt)?;
                length_delimited(bytes, &mut buf)?;
                kind = match tag {
                    FLOW => Kind::Flow,
                    NODE_STATUS => Kind::NodeStatus,
                    _ => Kind::LostEvents,
                };
            }
            NODE_NAME => {
                expect_len_delimited(tag, wt)?;
                let r = length_delimited(bytes, &mut buf)?;
                std::str::from_utf8(&bytes[r.clone()])
                    .map_err(|_| ScanError("node_name: invalid UTF-8".into()))?;
                node_name = (!r.is_empty()).then_some(r);
            }
            TIME => {
                expect_len_delimited(tag, wt)?;
                let r = length_delimited(bytes, &mut buf)?;
                let t = time.get_or_insert_with(Timestamp::default);
                t.merge(&bytes[r])?;
            }
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    let flow_time = if kind == Kind::Flow && time.is_none() {
        flow_time(bytes)?
    } else {
        None
    };
    Ok(Scanned {
        kind,
        time,
        flow_time,
        node_name,
    })
}

/// The `time` of the flow of a response without a `time` of its own: the
/// merge of every `flow` occurrence after the last other variant.
fn flow_time(bytes: &[u8]) -> Result<Option<Timestamp>, ScanError> {
    let mut buf = bytes;
    let mut time: Option<Timestamp> = None;
    while buf.has_remaining() {
        let (tag, wt) = decode_key(&mut buf)?;
        match tag {
            FLOW => {
                let r = length_delimited(bytes, &mut buf)?;
                let whole = &bytes[r];
                let mut f = whole;
                while f.has_remaining() {
                    let (tag, wt) = decode_key(&mut f)?;
                    if tag == FLOW_TIME {
                        expect_len_delimited(tag, wt)?;
                        let r = length_delimited(whole, &mut f)?;
                        time.get_or_insert_with(Timestamp::default)
                            .merge(&whole[r])?;
                    } else {
                        skip_field(wt, tag, &mut f, DecodeContext::default())?;
                    }
                }
            }
            NODE_STATUS | LOST_EVENTS => {
                length_delimited(bytes, &mut buf)?;
                time = None;
            }
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(time)
}

/// A peer's GetFlows response: its encoded bytes and what [`scan`] read.
#[derive(Debug, Clone)]
pub struct PeerResponse {
    /// The encoded `GetFlowsResponse`, as the peer sent it.
    pub bytes: Bytes,
    /// The fields the merge needs.
    pub scanned: Scanned,
}

impl PeerResponse {
    /// Scans `bytes`.
    pub fn new(bytes: Bytes) -> Result<Self, ScanError> {
        let scanned = scan(&bytes)?;
        Ok(PeerResponse { bytes, scanned })
    }

    /// The response decoded (tests, diagnostics).
    pub fn decode(&self) -> Result<GetFlowsResponse, prost::DecodeError> {
        GetFlowsResponse::decode(self.bytes.as_ref())
    }
}

/// A response on its way to a relay client.
#[derive(Debug)]
pub enum Out {
    /// A peer's response, forwarded as its bytes.
    Peer(PeerResponse),
    /// A response the relay built (node status, lost events, errors).
    Message(Box<GetFlowsResponse>),
}

impl Out {
    /// Whether it is a flow.
    pub fn is_flow(&self) -> bool {
        match self {
            Out::Peer(p) => p.scanned.kind == Kind::Flow,
            Out::Message(m) => matches!(m.response_types, Some(ResponseTypes::Flow(_))),
        }
    }

    /// The response as a message (decodes a peer's bytes): for in-process
    /// readers and tests.
    pub fn into_message(self) -> Result<GetFlowsResponse, Status> {
        match self {
            Out::Message(m) => Ok(*m),
            Out::Peer(p) => p
                .decode()
                .map_err(|e| Status::internal(format!("decoding a peer's GetFlows response: {e}"))),
        }
    }
}

impl From<GetFlowsResponse> for Out {
    fn from(r: GetFlowsResponse) -> Self {
        Out::Message(Box::new(r))
    }
}

impl From<PeerResponse> for Out {
    fn from(r: PeerResponse) -> Self {
        Out::Peer(r)
    }
}

/// The client codec of the relay's GetFlows calls to its peers: encodes
/// the request as prost does, yields each response as a [`PeerResponse`].
pub type PeerCodec = svc::grpc_codec::RawResponseCodec<GetFlowsRequest, PeerResponse>;

impl svc::grpc_codec::DecodeResponse for PeerResponse {
    fn decode_response(src: &mut DecodeBuf<'_>) -> Result<Self, Status> {
        // Copied out rather than split off tonic's read buffer: a slice
        // would keep the whole buffer alive while the flow waits in the
        // merge or a client queue, and the queues are bounded in
        // responses, not bytes (measured in `relay_bench`: slices cost
        // ten stuck follow clients 0.5–1 MB more each than copies).
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        PeerResponse::new(Bytes::from(bytes)).map_err(|e| Status::internal(e.to_string()))
    }
}

/// The server codec of the relay's `/observer.Observer/GetFlows`: decodes
/// requests as prost does, writes [`Out`] responses (a peer's bytes as
/// they are).
pub type RelayCodec = svc::grpc_codec::PreEncodedCodec<GetFlowsRequest, Out>;

impl svc::grpc_codec::EncodeResponse for Out {
    fn encode_response(self, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match self {
            Out::Peer(p) => svc::grpc_codec::put_encoded(&p.bytes, dst),
            Out::Message(m) => svc::grpc_codec::put_message(m.as_ref(), dst)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flow::{Flow, LostEvent};
    use proto::relay::NodeStatusEvent;

    fn ts(s: i64, n: i32) -> Timestamp {
        Timestamp {
            seconds: s,
            nanos: n,
        }
    }

    fn responses() -> Vec<GetFlowsResponse> {
        let flow = |time, node: &str| Flow {
            time,
            uuid: "u".into(),
            node_name: node.into(),
            ..Default::default()
        };
        vec![
            GetFlowsResponse::default(),
            GetFlowsResponse {
                response_types: Some(ResponseTypes::Flow(flow(Some(ts(5, 6)), "n1"))),
                node_name: "n1".into(),
                time: Some(ts(5, 6)),
            },
            GetFlowsResponse {
                response_types: Some(ResponseTypes::Flow(flow(Some(ts(7, 0)), ""))),
                node_name: String::new(),
                time: None,
            },
            GetFlowsResponse {
                response_types: Some(ResponseTypes::Flow(flow(None, ""))),
                ..Default::default()
            },
            GetFlowsResponse {
                response_types: Some(ResponseTypes::LostEvents(LostEvent {
                    num_events_lost: 3,
                    ..Default::default()
                })),
                node_name: "n2".into(),
                time: Some(ts(-1, 999_999_999)),
            },
            GetFlowsResponse {
                response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
                    node_names: vec!["a".into()],
                    ..Default::default()
                })),
                node_name: "r".into(),
                time: Some(ts(1, 0)),
            },
            GetFlowsResponse {
                response_types: None,
                node_name: "n3".into(),
                time: Some(ts(9, 1)),
            },
        ]
    }

    /// What the scanner must agree with: prost's decode.
    fn expected(r: &GetFlowsResponse) -> (Kind, Option<Timestamp>, Timestamp) {
        let kind = match r.response_types {
            None => Kind::None,
            Some(ResponseTypes::Flow(_)) => Kind::Flow,
            Some(ResponseTypes::NodeStatus(_)) => Kind::NodeStatus,
            Some(ResponseTypes::LostEvents(_)) => Kind::LostEvents,
        };
        (kind, r.time, crate::merge::response_time(r))
    }

    fn check(bytes: &[u8]) -> Option<Scanned> {
        let decoded = GetFlowsResponse::decode(bytes);
        let scanned = scan(bytes);
        if let Ok(r) = &decoded {
            let s = scanned
                .as_ref()
                .expect("prost decodes it: the scan must too");
            assert_eq!((s.kind, s.time, s.order_time()), expected(r), "{bytes:?}");
            let name = s.node_name.clone().map_or("", |n| {
                std::str::from_utf8(&bytes[n]).expect("checked UTF-8")
            });
            assert_eq!(name, r.node_name);
        }
        scanned.ok()
    }

    #[test]
    fn scan_agrees_with_prost_on_every_kind_of_response() {
        for r in responses() {
            let s = check(&r.encode_to_vec()).expect("well-formed");
            assert_eq!(s.kind, expected(&r).0);
        }
    }

    #[test]
    fn repeated_fields_merge_and_the_last_variant_wins_as_in_prost() {
        let rs = responses();
        // Concatenated encodings are one message whose fields merge.
        for a in &rs {
            for b in &rs {
                let mut bytes = a.encode_to_vec();
                bytes.extend(b.encode_to_vec());
                check(&bytes).expect("well-formed");
            }
        }
        // Unknown fields of every wire type are skipped.
        let mut bytes = rs[1].encode_to_vec();
        bytes.extend([7 << 3, 1]); // field 7, varint
        bytes.extend([(8 << 3) | 1, 0, 0, 0, 0, 0, 0, 0, 0]); // field 8, fixed64
        bytes.extend([(9 << 3) | 5, 0, 0, 0, 0]); // field 9, fixed32
        bytes.extend([(10 << 3) | 2, 1, 0]); // field 10, bytes
        assert_eq!(check(&bytes).expect("well-formed").kind, Kind::Flow);
    }

    #[test]
    fn mutated_bytes_never_scan_differently_from_prost() {
        // A small deterministic generator.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let rs = responses();
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut b = rs[next(rs.len())].encode_to_vec();
            if b.is_empty() {
                continue;
            }
            match next(4) {
                0 => {
                    let i = next(b.len());
                    b[i] ^= 1 << next(8);
                }
                1 => b.truncate(next(b.len())),
                2 => {
                    let i = next(b.len());
                    b[i] = next(256) as u8;
                }
                _ => {
                    let i = next(b.len());
                    b.insert(i, next(256) as u8);
                }
            }
            if check(&b).is_some() {
                accepted += 1;
            }
        }
        assert!(accepted > 0);
    }

    #[test]
    fn malformed_top_level_is_an_error_naming_the_message() {
        let e = scan(&[0x0a, 0x05, 0x00]).unwrap_err();
        assert!(e.to_string().contains("malformed GetFlowsResponse"), "{e}");
        // node_name as a varint.
        let e = scan(&[0xc0, 0x3e, 0x01]).unwrap_err();
        assert!(e.to_string().contains("field 1000"), "{e}");
    }
}
