//! Decodes datapath events (the `ebpf` crate's ABI) into Hubble `flow.Flow`
//! messages and enriches them, the way Hubble's L3/L4 parser does.
//!
//! One record goes through these layers, one module each:
//!
//! 1. [`ebpf::parse`]: the ring-buffer record → typed event + packet bytes;
//! 2. [`l34`]: packet bytes → Ethernet, IP, Layer4 (truncation-tolerant);
//! 3. [`event`]: event fields → verdict, drop reason, event type,
//!    observation point, CT state, policy match, direction, endpoint hints;
//! 4. [`enrich`]: endpoint ids, addresses and identities → namespace, pod,
//!    labels, workloads, services, DNS names (through narrow lookup traits);
//! 5. [`summary`]: Hubble's `Summary` string; [`reasons`]: the code ↔ name
//!    tables shared with the CLI.
//!
//! Service translation records (trace-sock) carry no packet: [`sock`] fills
//! their flow in place of layers 2 and 3, as Hubble's sock parser does.
//!
//! [`Parser`] ties them together; [`FlowText`] keeps a flow's text fields
//! (MACs, addresses, summary, UUID) apart for an encoder that writes them
//! straight into its output. [`synthetic`] generates realistic ABI
//! records (with a matching [`StaticEnrichment`]) for demos, tests and
//! benchmarks; [`packet`] builds the packets they carry.
//!
//! This crate is pure: no async runtime (it must not depend on tokio, hyper,
//! axum or tonic's transport: `proto` without its `grpc` feature, checked
//! by `filter/tests/runtime_free.rs`), no `aya`, no clock reads (the
//! caller measures the boot-time offset, with `ebpf::clock`, and passes it
//! as a [`ClockOffset`]), no `unsafe`, no I/O
//! except reading an enrichment file when asked to.

pub mod decode;
pub mod defaults;
pub mod enrich;
pub mod event;
pub mod l34;
pub mod packet;
pub mod reasons;
pub mod sock;
pub mod summary;
pub mod synthetic;
pub mod text;

pub use decode::{ClockOffset, DecodeError, EventClock, Parser, SharedEndpoints};
pub use enrich::{
    EndpointInfo, EndpointLookup, Enricher, EnrichmentError, EnrichmentSpec, IdentityLookup,
    InterfaceLookup, NameLookup, NodeInfo, PolicyInfo, PolicyLookup, ServiceInfo, ServiceLookup,
    StaticEnrichment, WorkloadInfo,
};
pub use synthetic::Synthetic;
pub use text::FlowText;

#[cfg(test)]
mod tests;
