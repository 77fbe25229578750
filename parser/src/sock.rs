//! Service translation records ([`ebpf::TraceSockEvent`], Cilium's
//! `trace_sock_notify`) → `flow.Flow`, as Hubble's sock parser
//! (`pkg/hubble/parser/sock`) fills them:
//!
//! - `Type` SOCK, `event_type` `{7, xlate point}`, `sock_xlate_point`;
//! - `verdict`: TRACED before a translation (`PRE_DIRECTION_*`), TRANSLATED
//!   after it (`POST_DIRECTION_*`);
//! - `IP`: the client → the address of the point (the frontend before, the
//!   backend after the forward translation); on the reverse points source
//!   and destination are swapped;
//! - `l4`: TCP or UDP with the destination port of the point and source
//!   port 0 (a socket LB does not know it; kept 0 here for the same output);
//! - `Summary` `TCP` / `UDP` / `Unknown`; `socket_cookie`, `cgroup_id` as
//!   recorded; no `is_reply`, no `trace_observation_point`, no
//!   `traffic_direction`, no Ethernet, no interface;
//! - enrichment: the client endpoint from the record's endpoint id, identity
//!   and address; the other side by address (and identity, when the
//!   datapath knew it); `destination_service` / `source_service` by
//!   address and port, so the frontend point names the service.

use std::net::IpAddr;

use ebpf::{TraceSockEvent, sock_l4, xlate_point};
use proto::flow::Ip;
use proto::flow::{
    CiliumEventType, Flow, FlowType, IpVersion, Layer4, Tcp, Udp, Verdict, layer4::Protocol,
};

use crate::enrich::SideHint;

/// Fills the record's own fields into `flow` (which the caller reset) and
/// returns the `(source, destination)` hints for enrichment.
pub fn fill(ev: &TraceSockEvent, flow: &mut Flow) -> (SideHint, SideHint) {
    let point = ev.hdr.subtype;
    flow.r#type = FlowType::Sock as i32;
    flow.event_type = Some(CiliumEventType {
        r#type: i32::from(ev.hdr.r#type),
        sub_type: i32::from(point),
    });
    flow.verdict = verdict(point) as i32;
    flow.sock_xlate_point = i32::from(point);
    flow.socket_cookie = ev.sock_cookie;
    flow.cgroup_id = ev.cgroup_id;

    let mut client = SideHint {
        endpoint_id: u32::from(ev.hdr.source),
        identity: ev.src_label,
        ip: Some(IpAddr::from(ev.src_addr())),
        port: 0,
    };
    let mut peer = SideHint {
        endpoint_id: 0,
        identity: ev.dst_label,
        ip: Some(IpAddr::from(ev.dst_addr())),
        port: ev.dst_port,
    };
    if is_rev_nat(point) {
        std::mem::swap(&mut client, &mut peer);
    }
    flow.ip = Some(Ip {
        source: client.ip.map(crate::l34::fmt_ip).unwrap_or_default(),
        destination: peer.ip.map(crate::l34::fmt_ip).unwrap_or_default(),
        ip_version: IpVersion::IPv4 as i32,
        ..Ip::default()
    });
    flow.l4 = l4(ev.l4_proto, client.port, peer.port);
    (client, peer)
}

/// Hubble's `Summary` of a trace-sock flow.
pub fn summary(ev: &TraceSockEvent) -> &'static str {
    match ev.l4_proto {
        sock_l4::TCP => "TCP",
        sock_l4::UDP => "UDP",
        _ => "Unknown",
    }
}

/// TRACED before a translation, TRANSLATED after it.
pub fn verdict(point: u8) -> Verdict {
    match point {
        xlate_point::PRE_DIRECTION_FWD | xlate_point::PRE_DIRECTION_REV => Verdict::Traced,
        xlate_point::POST_DIRECTION_FWD | xlate_point::POST_DIRECTION_REV => Verdict::Translated,
        _ => Verdict::Unknown,
    }
}

fn is_rev_nat(point: u8) -> bool {
    matches!(
        point,
        xlate_point::PRE_DIRECTION_REV | xlate_point::POST_DIRECTION_REV
    )
}

fn l4(proto: u8, sport: u16, dport: u16) -> Option<Layer4> {
    let (source_port, destination_port) = (u32::from(sport), u32::from(dport));
    let p = match proto {
        sock_l4::TCP => Protocol::Tcp(Tcp {
            source_port,
            destination_port,
            ..Tcp::default()
        }),
        sock_l4::UDP => Protocol::Udp(Udp {
            source_port,
            destination_port,
        }),
        _ => return None,
    };
    Some(Layer4 { protocol: Some(p) })
}
