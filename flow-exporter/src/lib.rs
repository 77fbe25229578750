//! The per-node flow exporter: reads datapath events (a pinned BPF ring
//! buffer), replay files or a synthetic generator; decodes and enriches them
//! into Hubble flows; keeps them in a bounded ring; and serves Hubble's
//! Observer and Peer gRPC APIs and Prometheus metrics.
//!
//! The event sources live in [`sources`], one module each
//! ([`sources::ringbuf`], [`sources::replay`], [`sources::synthetic`]),
//! beside what turns their records into flows ([`sources::decoder`],
//! [`sources::enrichment`], [`sources::clock`]); [`pipeline`] queues and
//! decodes them into the [`observer`]'s ring of [`event::Event`]s (each flow
//! kept in the compact, already encoded form of [`stored`], its endpoints
//! shared), which [`server`] serves (a stored flow as those bytes, see
//! [`served`]);
//! [`peers`] is what its `peer.Peer/Notify` announces (the cluster's nodes
//! from the enrichment file).
//!
//! Only the ring-buffer source ([`sources::ringbuf`], through `aya`) and the
//! boot clock ([`sources::clock`]) touch the kernel; the rest depends on
//! `proto`, `flow-filter` and `flow-parser` alone. Nothing here may depend on
//! the relay, the archiver or the CLI (they depend on this crate).

pub mod defaults;
pub mod encode;
pub mod event;
pub mod mask;
pub mod metrics;
pub mod observer;
pub mod peers;
pub mod pipeline;
pub mod progress;
pub mod ring;
pub mod served;
pub mod server;
pub mod sources;
pub mod stored;

/// The replay source at its former path, `flow_exporter::replay` (the CLI's
/// tests and benches load their fixtures through it).
pub use sources::replay;
