//! ABI event → flow fields that come from the event itself (verdict, drop
//! reason, event type, observation point, CT state, policy match, direction,
//! interface, file), and the per-side hints the enricher needs.
//!
//! Rules, following Hubble's L3/L4 parser:
//!
//! - **verdict**: trace → FORWARDED; drop → DROPPED; policy verdict →
//!   AUDIT if audited, else DROPPED if `verdict < 0`, REDIRECTED if `> 0`,
//!   else FORWARDED.
//! - **drop_reason / drop_reason_desc**: only for DROPPED flows (the drop
//!   code, or `-verdict` of a denied policy verdict).
//! - **event_type**: `{type, sub_type}` in monitor numbering; sub_type is the
//!   drop code for drops, the monitor observation point for traces, 0 for
//!   policy verdicts.
//! - **trace_observation_point / trace_reason**: traces only.
//! - **is_reply**: from the CT state (REPLY → true; NEW, ESTABLISHED,
//!   RELATED → false; unknown → absent). A policy verdict with an unknown
//!   CT state that was not denied is the first packet of a connection, so
//!   not a reply (Hubble's rule).
//! - **identities**: trace/drop: `src_label` → source, `dst_label` →
//!   destination. Policy verdict: ingress → remote is the source and local
//!   the destination; egress the opposite.
//! - **endpoint ids**: the event's `source` endpoint is the source for
//!   from-endpoint traces and egress drops/verdicts, and the destination for
//!   to-endpoint traces and ingress drops/verdicts; `dst_id` names the
//!   destination when set.
//! - **traffic_direction**: policy verdicts and drops carry it. Otherwise
//!   (Hubble's rule) for drops and for traces with a known CT state at an
//!   endpoint (`source != 0`): the packet is egress when the endpoint is the
//!   packet's source, flipped for replies. "Is the source" is decided by the
//!   resolved source endpoint id when known, else by the observation point
//!   (from-endpoint: yes; to-endpoint: no; others: unknown direction).

use ebpf::{
    DropEvent, EventHdr, PolicyVerdictEvent, RawEvent, TraceEvent, direction, event_flags,
    src_file, trace_point,
};
use proto::flow::{
    CiliumEventType, FileInfo, Flow, FlowType, NetworkInterface, TrafficDirection, Verdict,
};

use proto::wkt::BoolValue;

use crate::enrich::SideHint;
use crate::l34::Headers;
use crate::reasons;

/// Fills the event-derived fields of `flow` and returns the `(source,
/// destination)` hints for enrichment (addresses and ports from `h`).
pub fn fill(ev: &RawEvent<'_>, h: &Headers, flow: &mut Flow) -> (SideHint, SideHint) {
    let hdr = ev.hdr();
    flow.r#type = FlowType::L3L4 as i32;
    flow.event_type = Some(CiliumEventType {
        r#type: i32::from(hdr.r#type),
        sub_type: i32::from(hdr.subtype),
    });
    let (mut src, mut dst) = match ev {
        RawEvent::Trace(t, _) => trace(t, flow),
        RawEvent::Drop(d, _) => drop(d, flow),
        RawEvent::PolicyVerdict(p, _) => policy_verdict(p, flow),
        // Decoded by crate::sock (no packet); nothing event-specific here.
        RawEvent::TraceSock(..) => (SideHint::default(), SideHint::default()),
    };
    flow.reply = flow.is_reply.is_some_and(|b| b.value);
    if let Some((s, d)) = h.ip {
        src.ip = Some(s);
        dst.ip = Some(d);
    }
    if let Some(l4) = h.l4 {
        (src.port, dst.port) = l4.ports();
    }
    (src, dst)
}

fn interface(ifindex: u32) -> Option<NetworkInterface> {
    (ifindex != 0).then(|| NetworkInterface {
        index: ifindex,
        name: String::new(),
    })
}

fn set_dropped(flow: &mut Flow, code: u32) {
    flow.verdict = Verdict::Dropped as i32;
    flow.drop_reason = code;
    flow.drop_reason_desc = reasons::drop_reason_enum(code) as i32;
}

fn trace(t: &TraceEvent, flow: &mut Flow) -> (SideHint, SideHint) {
    flow.verdict = Verdict::Forwarded as i32;
    flow.trace_observation_point = reasons::obs_point_to_proto(t.hdr.subtype) as i32;
    flow.trace_reason = reasons::trace_reason(t.reason) as i32;
    flow.is_reply = reasons::is_reply(t.reason).map(BoolValue::from);
    flow.interface = interface(t.ifindex);
    let ep = u32::from(t.hdr.source);
    let dst_id = u32::from(t.dst_id);
    let (src_ep, dst_ep) = match t.hdr.subtype {
        trace_point::FROM_LXC => (ep, dst_id),
        trace_point::TO_LXC => (0, if dst_id != 0 { dst_id } else { ep }),
        _ => (0, dst_id),
    };
    (
        SideHint {
            endpoint_id: src_ep,
            identity: t.src_label,
            ..SideHint::default()
        },
        SideHint {
            endpoint_id: dst_ep,
            identity: t.dst_label,
            ..SideHint::default()
        },
    )
}

fn drop(d: &DropEvent, flow: &mut Flow) -> (SideHint, SideHint) {
    set_dropped(flow, u32::from(d.hdr.subtype));
    flow.is_reply = reasons::is_reply(d.ct_state).map(BoolValue::from);
    flow.interface = interface(d.ifindex);
    if d.file != src_file::UNKNOWN || d.line != 0 {
        flow.file = Some(FileInfo {
            name: src_file::name(d.file)
                .map(str::to_string)
                .unwrap_or_else(|| format!("file-{}", d.file)),
            line: u32::from(d.line),
        });
    }
    let ep = u32::from(d.hdr.source);
    let dst_id = u32::from(d.dst_id);
    let (src_ep, dst_ep) = match d.direction {
        direction::EGRESS => (ep, dst_id),
        direction::INGRESS => (0, if dst_id != 0 { dst_id } else { ep }),
        _ => (0, dst_id),
    };
    (
        SideHint {
            endpoint_id: src_ep,
            identity: d.src_label,
            ..SideHint::default()
        },
        SideHint {
            endpoint_id: dst_ep,
            identity: d.dst_label,
            ..SideHint::default()
        },
    )
}

fn policy_verdict(p: &PolicyVerdictEvent, flow: &mut Flow) -> (SideHint, SideHint) {
    if p.audited != 0 {
        flow.verdict = Verdict::Audit as i32;
    } else if p.verdict < 0 {
        set_dropped(flow, p.verdict.unsigned_abs());
    } else if p.verdict > 0 {
        flow.verdict = Verdict::Redirected as i32;
    } else {
        flow.verdict = Verdict::Forwarded as i32;
    }
    flow.policy_match_type = u32::from(p.match_type);
    flow.is_reply = match reasons::is_reply(p.reason) {
        Some(r) => Some(r),
        None if p.verdict >= 0 => Some(false),
        None => None,
    }
    .map(BoolValue::from);
    flow.traffic_direction = direction_proto(p.direction) as i32;
    flow.interface = interface(p.ifindex);
    let local = SideHint {
        endpoint_id: u32::from(p.hdr.source),
        identity: p.local_label,
        ..SideHint::default()
    };
    let remote = SideHint {
        identity: p.remote_label,
        ..SideHint::default()
    };
    if p.direction == direction::INGRESS {
        (remote, local)
    } else {
        (local, remote)
    }
}

fn direction_proto(d: u8) -> TrafficDirection {
    match d {
        direction::INGRESS => TrafficDirection::Ingress,
        direction::EGRESS => TrafficDirection::Egress,
        _ => TrafficDirection::Unknown,
    }
}

/// Sets `flow.traffic_direction` for traces and drops once the source
/// endpoint id is resolved (`source_ep_id`, 0 if unknown); policy verdicts
/// were set by [`fill`].
pub fn set_traffic_direction(ev: &RawEvent<'_>, source_ep_id: u32, flow: &mut Flow) {
    let dir = match ev {
        RawEvent::PolicyVerdict(..) | RawEvent::TraceSock(..) => return,
        RawEvent::Drop(d, _) => {
            if d.direction != direction::UNKNOWN {
                direction_proto(d.direction)
            } else if d.hdr.source == 0 {
                TrafficDirection::Unknown
            } else if u32::from(d.hdr.source) == source_ep_id {
                TrafficDirection::Egress
            } else {
                TrafficDirection::Ingress
            }
        }
        RawEvent::Trace(t, _) => trace_direction(&t.hdr, t.reason, source_ep_id),
    };
    flow.traffic_direction = dir as i32;
}

fn trace_direction(hdr: &EventHdr, reason: u8, source_ep_id: u32) -> TrafficDirection {
    let Some(is_reply) = reasons::is_reply(reason) else {
        return TrafficDirection::Unknown;
    };
    if hdr.source == 0 {
        return TrafficDirection::Unknown;
    }
    let is_source_ep = if source_ep_id != 0 {
        u32::from(hdr.source) == source_ep_id
    } else {
        match hdr.subtype {
            trace_point::FROM_LXC => true,
            trace_point::TO_LXC => false,
            _ => return TrafficDirection::Unknown,
        }
    };
    if is_source_ep != is_reply {
        TrafficDirection::Egress
    } else {
        TrafficDirection::Ingress
    }
}

/// True if the captured bytes start at the IP header.
pub fn is_l3_packet(hdr: &EventHdr) -> bool {
    hdr.flags & event_flags::L3_PACKET != 0
}
