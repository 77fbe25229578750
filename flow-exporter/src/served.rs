//! Flows served as bytes encoded once: a stored flow *is* its encoded
//! GetFlows response ([`crate::stored::StoredFlow`], written at ingest), and
//! every reader without a field mask or filter gets those bytes copied
//! into its stream (no flow rebuilt, no second encoding). [`FlowsCodec`]
//! writes them on the wire; anything else (lost events, masked flows) goes
//! out as a message, encoded as tonic's prost codec would.

use std::sync::Arc;

use prost::encoding::{message, string};
use proto::flow::Flow;
use proto::observer::{GetFlowsRequest, GetFlowsResponse, get_flows_response::ResponseTypes};
use tonic::Status;
use tonic::codec::EncodeBuf;

use crate::event::Event;
use crate::ring::Slot;

/// One GetFlows response on its way to a client.
#[derive(Debug)]
pub enum Served {
    /// A stored flow, sent as the bytes stored in its slot.
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
                Event::Flow(f) => flow_response(f.to_flow()),
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

/// The gRPC codec of `observer.Observer/GetFlows` on the exporter:
/// requests decode as prost does, [`Served`] responses write themselves.
pub type FlowsCodec = svc::grpc_codec::PreEncodedCodec<GetFlowsRequest, Served>;

impl svc::grpc_codec::EncodeResponse for Served {
    fn encode_response(self, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match self {
            Served::Stored(slot) => match &slot.value {
                Event::Flow(f) => f.write(dst),
                Event::Lost { .. } => unreachable!("only flows are served from their slot"),
            },
            Served::Message(m) => svc::grpc_codec::put_message(m.as_ref(), dst)?,
        }
        Ok(())
    }
}
