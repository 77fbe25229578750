//! The kernel interface, Rust side: the one Rust mirror of the C headers
//! under `ebpf/include/` that the kernel programs and user space share.
//!
//! - [`events`]: the datapath → userspace event ABI (`hubble_events.h`), the
//!   fixed-layout records of the `events` ring buffer, their decoding
//!   ([`parse`]) and encoding. Its items are re-exported at the crate root
//!   (`ebpf::parse`, `ebpf::msg_type`, `ebpf::TraceEvent`, ...).
//! - [`maps`]: keys, values, names and flag constants of the datapath maps
//!   (`dp_types.h`).
//! - [`identity`]: Cilium's reserved security identities, numbers and names.
//!
//! Every `#[repr(C)]` struct and constant is checked against the headers by
//! one test that compiles them with the host C compiler and compares every
//! size, offset and constant. No other crate declares a type mirrored from C.
//!
//! This crate must not depend on `aya`, an async runtime or anything else that
//! touches the kernel: it is pure data (the datapath crate opens and programs
//! the maps with aya; aya is only a dev-dependency here, for the privileged
//! emit test).

pub mod clock;
pub mod events;
pub mod identity;
pub mod maps;

pub use events::*;

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod tests;
