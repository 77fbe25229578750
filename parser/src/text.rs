//! [`FlowText`]: a flow's text fields (MACs, addresses, summary, UUID)
//! kept as the fixed-size values they are made from, for an encoder that
//! writes the text straight into its output
//! ([`crate::Parser::decode_text_into`]) instead of into the `Flow`'s
//! `String`s first and copying it from there.

use proto::flow::{Ethernet, Flow};

use crate::l34::{Headers, write_mac_bytes};

/// Where a flow's summary comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Summary {
    /// The packet's headers ([`crate::summary::write_summary`]).
    Packet,
    /// A fixed text (service translation records).
    Fixed(&'static str),
}

/// The text fields [`crate::Parser::decode_text_into`] left out of the
/// flow. Each part is either kept here (the flow's field left empty) or
/// not (the flow's field holds it); a default `FlowText` keeps nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowText {
    /// The packet's headers: the flow's whole `ethernet` and `ip` are
    /// made from them (`Ethernet` from the MACs; `IP` from the addresses
    /// and their version, not encrypted, no translated source). The flow's
    /// own `ethernet` is then `None` and its `ip` holds the version only.
    packet: Option<Headers>,
    summary: Option<Summary>,
    /// The random bytes of the flow's UUID ([`write_uuid_bytes`]).
    uuid: Option<[u8; 16]>,
}

impl FlowText {
    /// Keeps nothing (every text in the flow).
    pub fn clear(&mut self) {
        *self = FlowText::default();
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        *self == FlowText::default()
    }

    pub(crate) fn set_packet(&mut self, h: Headers) {
        self.packet = Some(h);
        self.summary = Some(Summary::Packet);
    }

    pub(crate) fn set_fixed_summary(&mut self, s: &'static str) {
        self.summary = Some(Summary::Fixed(s));
    }

    pub(crate) fn set_uuid(&mut self, bytes: [u8; 16]) {
        self.uuid = Some(bytes);
    }

    /// The packet's headers, when the flow's `ethernet` and `ip` are to be
    /// made from them (see the field's doc).
    pub fn packet(&self) -> Option<&Headers> {
        self.packet.as_ref()
    }

    /// Appends the flow's summary to `out`; `false` when it is not kept
    /// here (the flow's `summary` holds it).
    pub fn write_summary(&self, out: &mut Vec<u8>) -> bool {
        match (self.summary, &self.packet) {
            (Some(Summary::Packet), Some(h)) => {
                crate::summary::write_summary_bytes(h, out);
                true
            }
            (Some(Summary::Fixed(s)), _) => {
                out.extend_from_slice(s.as_bytes());
                true
            }
            _ => false,
        }
    }

    /// Appends the flow's UUID text (36 bytes) to `out`; `false` when it
    /// is not kept here (the flow's `uuid` holds it).
    pub fn write_uuid(&self, out: &mut Vec<u8>) -> bool {
        match self.uuid {
            Some(u) => {
                write_uuid_bytes(u, out);
                true
            }
            None => false,
        }
    }

    /// Writes what is kept here into `flow`'s fields: the flow is then
    /// the one [`crate::Parser::decode_shared_into`] gives (a test
    /// compares them). Only the parts kept are written.
    pub fn write_into(&self, flow: &mut Flow) {
        if let Some(h) = &self.packet {
            match h.eth {
                Some((s, d)) => {
                    let e = flow.ethernet.get_or_insert_with(Ethernet::default);
                    for (to, m) in [(&mut e.source, s), (&mut e.destination, d)] {
                        write_text(to, |b| write_mac_bytes(&m, b));
                    }
                }
                None => flow.ethernet = None,
            }
            h.ip_into(&mut flow.ip);
        }
        if self.summary.is_some() {
            write_text(&mut flow.summary, |b| {
                self.write_summary(b);
            });
        }
        if self.uuid.is_some() {
            write_text(&mut flow.uuid, |b| {
                self.write_uuid(b);
            });
        }
    }
}

/// Replaces `s` with the (ASCII) text `write` appends to its buffer.
fn write_text(s: &mut String, write: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::mem::take(s).into_bytes();
    b.clear();
    write(&mut b);
    *s = String::from_utf8(b).unwrap_or_default();
}

/// Appends the hyphenated lowercase text (36 bytes) of the random
/// (version 4, RFC 4122 variant) UUID made from `bytes`, as Hubble's flow
/// UUIDs (Go's `uuid.New()`) are: the version and variant bits set over
/// the random ones, as `uuid::Builder::from_random_bytes` sets them.
/// Written by hand in place (the `uuid` crate's formatter cost ~3 % of
/// ingest; a test compares the two).
#[inline]
pub fn write_uuid_bytes(mut bytes: [u8; 16], out: &mut Vec<u8>) {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let at = out.len();
    out.resize(at + 36, b'-');
    let dst = &mut out[at..at + 36];
    let mut n = 0;
    for (i, b) in bytes.into_iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            n += 1;
        }
        dst[n..n + 2].copy_from_slice(&crate::l34::HEX_PAIRS[usize::from(b)]);
        n += 2;
    }
}
