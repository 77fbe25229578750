//! Flows served as bytes encoded once: the GetFlows response of a stored
//! flow is protobuf-encoded the first time a reader without a field mask
//! asks for it, kept in the ring slot next to the flow, and the same bytes
//! are copied into every such follower's stream (no clone of the flow, no
//! second encoding). [`FlowsCodec`] writes them on the wire; anything else
//! (lost events, masked flows) goes out as a message, encoded as tonic's
//! prost codec would.

use std::sync::Arc;

use prost::Message as _;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{message, string};
use proto::flow::Flow;
use proto::observer::{GetFlowsRequest, GetFlowsResponse, get_flows_response::ResponseTypes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::event::Event;
use crate::ring::Slot;

/// One GetFlows response on its way to a client.
#[derive(Debug)]
pub enum Served {
    /// A stored flow, sent as the bytes cached in its slot.
    Stored(Arc<Slot<Event>>),
    /// Any other response (lost events, a flow under a field mask), boxed
    /// so that the stream's queue holds pointers, not 1.4 KB messages.
    Message(Box<GetFlowsResponse>),
}

impl Served {
    /// The response as a message (clones a stored flow): for in-process
    /// readers ([`crate::observer::Observer::get_flows`]).
    pub fn into_response(self) -> GetFlowsResponse {
        match self {
            Served::Message(r) => *r,
            Served::Stored(slot) => match &slot.value {
                Event::Flow(f) => flow_response(f.clone()),
                Event::Lost { .. } => unreachable!("only flows are served from their slot"),
            },
        }
    }
}

/// The GetFlows response carrying `f`, as the exporter has always built
/// it: the flow's node name and time repeated in the response.
pub fn flow_response(f: Flow) -> GetFlowsResponse {
    GetFlowsResponse {
        node_name: f.node_name.clone(),
        time: f.time,
        response_types: Some(ResponseTypes::Flow(f)),
    }
}

/// Encodes `flow_response(f.clone())` into `buf` without cloning: the same
/// bytes prost writes (fields by tag: the `flow` oneof (1), `node_name`
/// (1000), `time` (1001); pinned by a test over every fixture).
pub fn encode_flow_response(f: &Flow, buf: &mut Vec<u8>) {
    buf.clear();
    let len = message::encoded_len(1, f)
        + if f.node_name.is_empty() {
            0
        } else {
            string::encoded_len(1000, &f.node_name)
        }
        + f.time.as_ref().map_or(0, |t| message::encoded_len(1001, t));
    buf.reserve(len);
    message::encode(1, f, buf);
    if !f.node_name.is_empty() {
        string::encode(1000, &f.node_name, buf);
    }
    if let Some(t) = &f.time {
        message::encode(1001, t, buf);
    }
}

/// The gRPC codec of `observer.Observer/GetFlows` on the exporter: decodes
/// requests as prost does, writes [`Served`] responses.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlowsCodec;

/// Encoder half of [`FlowsCodec`].
#[derive(Debug, Default, Clone, Copy)]
pub struct ServedEncoder;

/// Decoder half of [`FlowsCodec`].
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestDecoder;

impl Codec for FlowsCodec {
    type Encode = Served;
    type Decode = GetFlowsRequest;
    type Encoder = ServedEncoder;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ServedEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder
    }
}

impl Encoder for ServedEncoder {
    type Item = Served;
    type Error = Status;

    fn encode(&mut self, item: Served, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Served::Stored(slot) => dst.put_slice(slot.encoded()),
            Served::Message(m) => m
                .encode(dst)
                .map_err(|e| Status::internal(format!("encoding a GetFlows response: {e}")))?,
        }
        Ok(())
    }
}

impl Decoder for RequestDecoder {
    type Item = GetFlowsRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<GetFlowsRequest>, Status> {
        let req = GetFlowsRequest::decode(src.copy_to_bytes(src.remaining()))
            .map_err(|e| Status::internal(format!("decoding a GetFlows request: {e}")))?;
        Ok(Some(req))
    }
}

impl Slot<Event> {
    /// The encoded GetFlows response of the flow in this slot, encoded by
    /// the first reader that asks and shared by all others.
    pub fn encoded(&self) -> &[u8] {
        self.cache.get_or_init(|| {
            let mut buf = Vec::new();
            match &self.value {
                Event::Flow(f) => encode_flow_response(f, &mut buf),
                Event::Lost { .. } => {}
            }
            buf
        })
    }
}
