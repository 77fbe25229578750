//! The event sources, one module each, and what turns their records into
//! flows:
//!
//! - [`ringbuf`]: the kernel source, a pinned BPF ring buffer and the
//!   datapath's lost-event counter (the only module that touches the kernel);
//! - [`replay`]: `--replay FILE`, Hubble jsonpb lines fed in as observed;
//! - [`synthetic`]: `--synthetic`, the parser's generator at a paced rate;
//! - [`decoder`]: builds the parser (node name, enrichment, boot clock) the
//!   pipeline decodes raw records with;
//! - [`enrichment`]: the enrichment file, reloaded when the agent rewrites it,
//!   and the node list it publishes for `peer.Peer/Notify`;
//! - [`clock`]: `CLOCK_BOOTTIME`, the boot-to-wall offset of event times.

pub mod clock;
pub mod decoder;
pub mod enrichment;
pub mod replay;
pub mod ringbuf;
pub mod synthetic;

pub use decoder::{Decoders, ParserDecoder, decoder};
pub use synthetic::run_synthetic;
