//! The Hubble v1 API, wire-compatible with Cilium Hubble: packages `flow`,
//! `observer`, `peer` and `relay` as prost messages, tonic clients and servers
//! (feature `grpc`), and serde implementations that produce Hubble's `-o json`
//! (jsonpb) form.
//!
//! Without `grpc` this crate depends on no async runtime (no tokio, hyper,
//! axum or tonic): the messages, their JSON form and the descriptor set only,
//! which is all flow-filter and flow-parser may pull in. The crates that serve
//! or dial enable `grpc` for the generated clients and servers and
//! [`services`]. It depends on nothing else in the workspace: every other
//! crate depends on it.

#![expect(clippy::all, reason = "generated code")]
#![expect(missing_docs, reason = "generated code")]

pub mod flow {
    include!(concat!(env!("OUT_DIR"), "/flow.rs"));
    include!(concat!(env!("OUT_DIR"), "/flow.serde.rs"));
}

pub mod relay {
    include!(concat!(env!("OUT_DIR"), "/relay.rs"));
    include!(concat!(env!("OUT_DIR"), "/relay.serde.rs"));
}

pub mod peer {
    include!(concat!(env!("OUT_DIR"), "/peer.rs"));
    include!(concat!(env!("OUT_DIR"), "/peer.serde.rs"));
}

pub mod observer {
    pub use crate::flow::*;
    include!(concat!(env!("OUT_DIR"), "/observer.rs"));
    include!(concat!(env!("OUT_DIR"), "/observer.serde.rs"));
}

/// The encoded `FileDescriptorSet` of the four packages, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/hubble_descriptor.bin"));

pub mod json;
#[cfg(feature = "grpc")]
pub mod services;
pub mod wkt;
