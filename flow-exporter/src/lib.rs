//! The per-node flow exporter: reads datapath events (a pinned BPF ring
//! buffer), replay files or a synthetic generator; decodes and enriches them
//! into Hubble flows; keeps them in a bounded ring; and serves Hubble's
//! Observer and Peer gRPC APIs and Prometheus metrics.
//!
//! Only the ring-buffer source (`sources::ringbuf`) touches the kernel; the
//! rest depends on `proto`, `flow-filter` and `flow-parser` alone.

pub mod defaults;
pub mod mask;
pub mod metrics;
pub mod observer;
pub mod pipeline;
pub mod replay;
pub mod ring;
pub mod ringbuf;
pub mod server;
pub mod sources;
