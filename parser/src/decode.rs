//! [`Parser`]: one raw ring-buffer record → one enriched `flow.Flow`.

use std::time::SystemTime;

use std::sync::Arc;

use proto::flow::{Endpoint, Flow, Policy};
use proto::wkt::Timestamp;
use rand::rngs::SmallRng;
use rand::{RngCore as _, SeedableRng as _};

use crate::enrich::{EndpointMemo, Enricher};
use crate::l34::Headers;
use crate::text::FlowText;
use crate::{event, sock, summary};

/// Why a record could not be decoded. The caller counts these (by
/// [`DecodeError::kind`]) and skips the record; nothing else is affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The record does not follow the event ABI; the [`ebpf::AbiError`]
    /// carries what was wrong (lengths, version, type) as fields.
    #[error("malformed datapath event")]
    Abi(#[from] ebpf::AbiError),
}

impl DecodeError {
    /// Every label [`DecodeError::kind`] returns, for metrics that list
    /// their series up front.
    pub const KINDS: &'static [&'static str] =
        &["truncated", "version", "unknown_type", "capture_length"];

    /// A short, stable label for metrics (`truncated`, `version`,
    /// `unknown_type`, `capture_length`): one of [`DecodeError::KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Abi(ebpf::AbiError::Truncated { .. }) => "truncated",
            DecodeError::Abi(ebpf::AbiError::UnsupportedVersion { .. }) => "version",
            DecodeError::Abi(ebpf::AbiError::UnknownType { .. }) => "unknown_type",
            DecodeError::Abi(ebpf::AbiError::BadCaptureLength { .. }) => "capture_length",
        }
    }
}

/// Turns an event's `ktime_ns` (`bpf_ktime_get_boot_ns`) into wall time.
pub trait EventClock {
    /// The wall-clock time of an event emitted at boot-time `ktime_ns`.
    fn wall_time(&self, ktime_ns: u64) -> Timestamp;
}

/// Wall time = boot time + a fixed offset, measured once (and again after a
/// clock step if the caller wishes). Reading the clocks is the caller's
/// business (the exporter's `sources::clock`): this crate only applies the
/// offset it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    offset_ns: i128,
}

impl ClockOffset {
    /// An offset in nanoseconds (wall − boot).
    pub fn new(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    /// The offset from a simultaneous reading of both clocks.
    pub fn from_pair(wall: SystemTime, boot_ns: u64) -> Self {
        Self::new(Timestamp::from(wall).as_unix_nanos() - i128::from(boot_ns))
    }

    /// The offset in nanoseconds.
    pub fn offset_ns(&self) -> i128 {
        self.offset_ns
    }
}

impl EventClock for ClockOffset {
    fn wall_time(&self, ktime_ns: u64) -> Timestamp {
        Timestamp::from_unix_nanos(i128::from(ktime_ns) + self.offset_ns)
    }
}

/// A fixed time for every event (e.g. "when it was read").
impl EventClock for SystemTime {
    fn wall_time(&self, _ktime_ns: u64) -> Timestamp {
        Timestamp::from(*self)
    }
}

/// Any `Fn(ktime_ns) -> SystemTime`.
impl<F: Fn(u64) -> SystemTime> EventClock for F {
    fn wall_time(&self, ktime_ns: u64) -> Timestamp {
        Timestamp::from(self(ktime_ns))
    }
}

/// Decodes datapath events into flows: ABI → L2–L4 → event fields →
/// enrichment → summary, time, UUID and node name.
///
/// Pure: no I/O, no async runtime. One parser per consumer thread (it holds
/// the UUID generator and scratch buffers); the enricher inside is shared.
#[derive(Debug)]
pub struct Parser {
    node_name: String,
    enricher: Enricher,
    rng: SmallRng,
    uuids: bool,
    /// The endpoints [`Parser::decode_shared_into`] handed out, kept for
    /// the next flows from the same sides (this enricher's only).
    memo: EndpointMemo,
    /// The policy list of the flow decoded into last, kept so that the
    /// next policy verdict reuses its buffers.
    policies: Vec<Policy>,
}

/// A flow's two endpoints as [`Parser::decode_shared_into`] hands them
/// out: shared between every flow from the same side (same endpoint id,
/// identity and address) while the lookups stay unchanged, never copied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedEndpoints {
    /// `Flow.source`.
    pub source: Option<Arc<Endpoint>>,
    /// `Flow.destination`.
    pub destination: Option<Arc<Endpoint>>,
}

impl Parser {
    /// A parser for `node_name` (Hubble's absolute form, `cluster/node` when
    /// a cluster is named) with UUIDs seeded from the OS.
    pub fn new(node_name: impl Into<String>, enricher: Enricher) -> Self {
        Self {
            node_name: node_name.into(),
            enricher,
            rng: SmallRng::from_os_rng(),
            uuids: true,
            memo: EndpointMemo::default(),
            policies: Vec::new(),
        }
    }

    /// Makes the flow UUIDs a deterministic sequence (for tests).
    pub fn with_uuid_seed(mut self, seed: u64) -> Self {
        self.rng = SmallRng::seed_from_u64(seed);
        self
    }

    /// Leaves `uuid` empty (saves ~40 ns and one allocation per flow).
    pub fn without_uuids(mut self) -> Self {
        self.uuids = false;
        self
    }

    /// The node name flows get.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The enricher.
    pub fn enricher(&self) -> &Enricher {
        &self.enricher
    }

    /// Replaces the enricher (e.g. after the agent's state changed).
    pub fn set_enricher(&mut self, enricher: Enricher) {
        self.enricher = enricher;
        self.memo.clear();
    }

    /// Decodes one record into a new flow.
    pub fn decode<C: EventClock + ?Sized>(
        &mut self,
        raw: &[u8],
        clock: &C,
    ) -> Result<Flow, DecodeError> {
        let mut flow = Flow::default();
        self.decode_into(raw, clock, &mut flow)?;
        Ok(flow)
    }

    /// Decodes one record into `flow`, overwriting every field (the buffers
    /// of the summary, UUID, node name, addresses and both endpoints are reused, so a
    /// caller that hands back the flow it no longer needs decodes without
    /// allocating for them). On error `flow` is left reset.
    pub fn decode_into<C: EventClock + ?Sized>(
        &mut self,
        raw: &[u8],
        clock: &C,
        flow: &mut Flow,
    ) -> Result<(), DecodeError> {
        self.decode_impl(raw, clock, flow, None, None)
    }

    /// [`Parser::decode_into`] with the endpoints shared instead of
    /// written into the flow: `flow.source` and `flow.destination` are
    /// left `None` and `endpoints` gets them, the same `Arc` for every
    /// flow from the same side while the enricher's endpoint and identity
    /// lookups report the same [`crate::EndpointLookup::generation`] (a
    /// lookup that changed, or that does not track its changes, gets new
    /// ones: never a stale endpoint). On error both are left `None`.
    pub fn decode_shared_into<C: EventClock + ?Sized>(
        &mut self,
        raw: &[u8],
        clock: &C,
        flow: &mut Flow,
        endpoints: &mut SharedEndpoints,
    ) -> Result<(), DecodeError> {
        endpoints.source = None;
        endpoints.destination = None;
        self.decode_impl(raw, clock, flow, Some(endpoints), None)
    }

    /// [`Parser::decode_shared_into`] with the flow's text fields kept in
    /// `text` instead of written into the flow: for a packet, `ethernet`
    /// is left `None` and `ip` holds only the version (what metrics read),
    /// `summary` and `uuid` are left empty; [`FlowText::write_into`] fills
    /// them in as [`Parser::decode_shared_into`] would. A service
    /// translation record keeps its `ip` in the flow. On error `text`
    /// keeps nothing.
    pub fn decode_text_into<C: EventClock + ?Sized>(
        &mut self,
        raw: &[u8],
        clock: &C,
        flow: &mut Flow,
        endpoints: &mut SharedEndpoints,
        text: &mut FlowText,
    ) -> Result<(), DecodeError> {
        endpoints.source = None;
        endpoints.destination = None;
        text.clear();
        self.decode_impl(raw, clock, flow, Some(endpoints), Some(text))
    }

    fn decode_impl<C: EventClock + ?Sized>(
        &mut self,
        raw: &[u8],
        clock: &C,
        flow: &mut Flow,
        mut shared: Option<&mut SharedEndpoints>,
        mut text: Option<&mut FlowText>,
    ) -> Result<(), DecodeError> {
        let ev = match ebpf::parse(raw) {
            Ok(ev) => ev,
            Err(e) => {
                *flow = Flow::default();
                return Err(e.into());
            }
        };
        let mut summary_buf = std::mem::take(&mut flow.summary);
        let mut uuid_buf = std::mem::take(&mut flow.uuid);
        let mut node_buf = std::mem::take(&mut flow.node_name);
        // The endpoints, services and DNS names keep their buffers:
        // enrichment rewrites every one of them. Everything else is reset
        // (what is dropped here is what a flow still allocates).
        let source = flow.source.take();
        let destination = flow.destination.take();
        let source_service = flow.source_service.take();
        let destination_service = flow.destination_service.take();
        let source_names = std::mem::take(&mut flow.source_names);
        let destination_names = std::mem::take(&mut flow.destination_names);
        let mut iface_name = flow.interface.take().map(|i| i.name);
        // A parser's flow has at most one policy list.
        for list in [
            &mut flow.ingress_allowed_by,
            &mut flow.ingress_denied_by,
            &mut flow.egress_allowed_by,
            &mut flow.egress_denied_by,
        ] {
            if !list.is_empty() {
                self.policies = std::mem::take(list);
            }
        }
        let mut ethernet = flow.ethernet.take();
        let mut ip = flow.ip.take();
        *flow = Flow::default();
        flow.source = source;
        flow.destination = destination;
        flow.source_service = source_service;
        flow.destination_service = destination_service;
        flow.source_names = source_names;
        flow.destination_names = destination_names;
        let hdr = *ev.hdr();

        if let ebpf::RawEvent::TraceSock(s, _) = &ev {
            // A service translation: no packet, Hubble's sock parser rules.
            let (src, dst) = sock::fill(s, flow);
            self.enrich(flow, &src, &dst, shared.as_deref_mut());
            summary_buf.clear();
            match text.as_deref_mut() {
                Some(t) => t.set_fixed_summary(sock::summary(s)),
                None => summary_buf.push_str(sock::summary(s)),
            }
        } else {
            let h = Headers::decode(ev.payload(), event::is_l3_packet(&hdr));
            match text.as_deref_mut() {
                Some(t) => {
                    t.set_packet(h);
                    ethernet = None;
                    h.ip_version_into(&mut ip);
                }
                None => {
                    h.ethernet_into(&mut ethernet);
                    h.ip_into(&mut ip);
                }
            }
            flow.ethernet = ethernet;
            flow.ip = ip;
            flow.l4 = h.l4_proto();

            let (src, dst) = event::fill(&ev, &h, flow);
            // The interface's name is written by enrichment: into the
            // previous flow's buffer.
            if let (Some(iface), Some(name)) = (flow.interface.as_mut(), iface_name.as_mut()) {
                name.clear();
                std::mem::swap(&mut iface.name, name);
            }
            self.enrich(flow, &src, &dst, shared.as_deref_mut());
            let source_ep_id = match &shared {
                Some(s) => s.source.as_ref().map_or(0, |e| e.id),
                None => flow.source.as_ref().map_or(0, |e| e.id),
            };
            event::set_traffic_direction(&ev, source_ep_id, flow);
            if let ebpf::RawEvent::PolicyVerdict(p, _) = &ev {
                self.enricher
                    .policy_names_reusing(p.rule, flow, &mut self.policies);
            }
            if text.is_some() {
                summary_buf.clear();
            } else {
                summary::write_summary(&h, &mut summary_buf);
            }
        }
        flow.summary = summary_buf;
        flow.time = Some(clock.wall_time(hdr.ktime_ns));
        node_buf.clone_from(&self.node_name);
        flow.node_name = node_buf;
        if self.uuids {
            uuid_buf.clear();
            // Two 64-bit draws (`random::<[u8; 16]>()` draws each byte
            // apart: sixteen calls).
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
            bytes[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes());
            match text {
                Some(t) => t.set_uuid(bytes),
                None => {
                    let mut b = uuid_buf.into_bytes();
                    crate::text::write_uuid_bytes(bytes, &mut b);
                    // ASCII hex digits and hyphens.
                    uuid_buf = String::from_utf8(b).unwrap_or_default();
                }
            }
            flow.uuid = uuid_buf;
        }
        Ok(())
    }

    /// Enriches `flow`, its endpoints into `shared` when given.
    fn enrich(
        &mut self,
        flow: &mut Flow,
        src: &crate::enrich::SideHint,
        dst: &crate::enrich::SideHint,
        shared: Option<&mut SharedEndpoints>,
    ) {
        match shared {
            None => self.enricher.enrich(flow, src, dst),
            Some(s) => {
                flow.source = None;
                flow.destination = None;
                s.source = Some(self.enricher.shared_endpoint(src, &mut self.memo));
                s.destination = Some(self.enricher.shared_endpoint(dst, &mut self.memo));
                self.enricher.enrich_others(flow, src, dst);
            }
        }
    }
}
