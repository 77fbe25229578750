//! Code ↔ name tables: drop reasons (the `DropReason` enum and Hubble's human
//! text, as printed in the compact TYPE column), trace observation points
//! (monitor numbering ↔ the `TraceObservationPoint` proto enum ↔ the CLI's
//! `to-endpoint`-style names), CT states and policy match types.

use std::borrow::Cow;

use ebpf::{ct_state, policy_match, trace_point};
use proto::flow::{DropReason, TraceObservationPoint, TraceReason};

/// The `flow.DropReason` for a datapath drop code; `DROP_REASON_UNKNOWN`
/// for codes the enum does not define.
pub fn drop_reason_enum(code: u32) -> DropReason {
    i32::try_from(code)
        .ok()
        .and_then(|c| DropReason::try_from(c).ok())
        .unwrap_or(DropReason::Unknown)
}

/// Hubble's human text for a drop code (`133` → `"Policy denied"`); the
/// decimal code for unknown ones, as Hubble prints them.
pub fn drop_reason_text(code: u32) -> Cow<'static, str> {
    match drop_reason_str(code) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(code.to_string()),
    }
}

fn drop_reason_str(code: u32) -> Option<&'static str> {
    Some(match code {
        0 => "Success",
        2 => "Invalid packet",
        130 => "Invalid source mac",
        131 => "Invalid destination mac",
        132 => "Invalid source ip",
        133 => "Policy denied",
        134 => "Invalid packet",
        135 => "CT: Truncated or invalid header",
        136 => "Fragmentation needed",
        137 => "CT: Unknown L4 protocol",
        138 => "CT: Can't create entry from packet",
        139 => "Unsupported L3 protocol",
        140 => "Missed tail call",
        141 => "Error writing to packet",
        142 => "Unknown L4 protocol",
        143 => "Unknown ICMPv4 code",
        144 => "Unknown ICMPv4 type",
        145 => "Unknown ICMPv6 code",
        146 => "Unknown ICMPv6 type",
        147 => "Error retrieving tunnel key",
        148 => "Error retrieving tunnel options",
        149 => "Invalid Geneve option",
        150 => "Unknown L3 target address",
        151 => "Stale or unroutable IP",
        152 => "No matching local container found",
        153 => "Error while correcting L3 checksum",
        154 => "Error while correcting L4 checksum",
        155 => "CT: Map insertion failed",
        156 => "Invalid IPv6 extension header",
        157 => "IP fragmentation not supported",
        158 => "Service backend not found",
        160 => "No tunnel/encapsulation endpoint (datapath BUG!)",
        161 => "NAT 46/64 not enabled",
        162 => "Reached EDT rate-limiting drop horizon",
        163 => "Unknown connection tracking state",
        164 => "Local host is unreachable",
        165 => "No configuration available to perform policy decision",
        166 => "Unsupported L2 protocol",
        167 => "No mapping for NAT masquerade",
        168 => "Unsupported protocol for NAT masquerade",
        169 => "FIB lookup failed",
        170 => "Encapsulation traffic is prohibited",
        171 => "Invalid identity",
        172 => "Unknown sender",
        173 => "NAT not needed",
        174 => "Is a ClusterIP",
        175 => "First logical datagram fragment not found",
        176 => "Forbidden ICMPv6 message",
        177 => "Denied by LB src range check",
        178 => "Socket lookup failed",
        179 => "Socket assign failed",
        180 => "Proxy redirection not supported for protocol",
        181 => "Policy denied by denylist",
        182 => "VLAN traffic disallowed by VLAN filter",
        183 => "Incorrect VNI from VTEP",
        184 => "Failed to update or lookup TC buffer",
        185 => "No SID was found for the IP address",
        186 => "SRv6 state was removed during tail call",
        187 => "L3 translation from IPv4 to IPv6 failed (NAT46)",
        188 => "L3 translation from IPv6 to IPv4 failed (NAT64)",
        189 => "Authentication required",
        190 => "No conntrack map found",
        191 => "No nat map found",
        192 => "Invalid ClusterID",
        193 => "Unsupported packet protocol for DSR encapsulation",
        194 => "No egress gateway found",
        195 => "Traffic is unencrypted",
        196 => "TTL exceeded",
        197 => "No node ID found",
        198 => "Rate limited",
        _ => return None,
    })
}

/// `(monitor number, CLI name)` of every trace observation point.
const OBS_POINTS: [(u8, &str); 14] = [
    (trace_point::TO_LXC, "to-endpoint"),
    (trace_point::TO_PROXY, "to-proxy"),
    (trace_point::TO_HOST, "to-host"),
    (trace_point::TO_STACK, "to-stack"),
    (trace_point::TO_OVERLAY, "to-overlay"),
    (trace_point::FROM_LXC, "from-endpoint"),
    (trace_point::FROM_PROXY, "from-proxy"),
    (trace_point::FROM_HOST, "from-host"),
    (trace_point::FROM_STACK, "from-stack"),
    (trace_point::FROM_OVERLAY, "from-overlay"),
    (trace_point::FROM_NETWORK, "from-network"),
    (trace_point::TO_NETWORK, "to-network"),
    (trace_point::FROM_CRYPTO, "from-crypto"),
    (trace_point::TO_CRYPTO, "to-crypto"),
];

/// The proto enum for a monitor observation point: `to-endpoint` (0) is
/// `TO_ENDPOINT` (101), the others keep their number; unknown numbers are
/// `UNKNOWN_POINT`.
pub fn obs_point_to_proto(monitor: u8) -> TraceObservationPoint {
    if monitor == trace_point::TO_LXC {
        return TraceObservationPoint::ToEndpoint;
    }
    if usize::from(monitor) >= OBS_POINTS.len() {
        return TraceObservationPoint::UnknownPoint;
    }
    TraceObservationPoint::try_from(i32::from(monitor))
        .unwrap_or(TraceObservationPoint::UnknownPoint)
}

/// The monitor number for a proto observation point.
pub fn obs_point_from_proto(p: TraceObservationPoint) -> Option<u8> {
    match p {
        TraceObservationPoint::UnknownPoint => None,
        TraceObservationPoint::ToEndpoint => Some(trace_point::TO_LXC),
        other => u8::try_from(other as i32).ok(),
    }
}

/// The CLI name of a monitor observation point (`5` → `"from-endpoint"`).
pub fn obs_point_name(monitor: u8) -> Option<&'static str> {
    OBS_POINTS
        .iter()
        .find(|(n, _)| *n == monitor)
        .map(|(_, name)| *name)
}

/// The monitor number for a CLI name (`"to-endpoint"` → `0`).
pub fn obs_point_from_name(name: &str) -> Option<u8> {
    OBS_POINTS.iter().find(|(_, n)| *n == name).map(|(m, _)| *m)
}

/// `flow.TraceReason` for a datapath CT state.
pub fn trace_reason(ct: u8) -> TraceReason {
    match ct {
        ct_state::NEW => TraceReason::New,
        ct_state::ESTABLISHED => TraceReason::Established,
        ct_state::REPLY => TraceReason::Reply,
        ct_state::RELATED => TraceReason::Related,
        _ => TraceReason::Unknown,
    }
}

/// `is_reply` for a CT state: known states say whether this is the reply
/// direction; unknown ones say nothing.
pub fn is_reply(ct: u8) -> Option<bool> {
    match ct {
        ct_state::NEW | ct_state::ESTABLISHED | ct_state::RELATED => Some(false),
        ct_state::REPLY => Some(true),
        _ => None,
    }
}

/// Cilium's name for a policy match type, as in `policy-verdict:L3-L4`.
pub fn policy_match_name(m: u32) -> &'static str {
    match u8::try_from(m) {
        Ok(policy_match::NONE) => "none",
        Ok(policy_match::L3_ONLY) => "L3-Only",
        Ok(policy_match::L3_L4) => "L3-L4",
        Ok(policy_match::L4_ONLY) => "L4-Only",
        Ok(policy_match::ALL) => "all",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(133, DropReason::PolicyDenied, "Policy denied")]
    #[case(181, DropReason::PolicyDeny, "Policy denied by denylist")]
    #[case(134, DropReason::InvalidPacketDropped, "Invalid packet")]
    #[case(155, DropReason::CtMapInsertionFailed, "CT: Map insertion failed")]
    #[case(171, DropReason::InvalidIdentity, "Invalid identity")]
    #[case(196, DropReason::TtlExceeded, "TTL exceeded")]
    #[case(198, DropReason::DropRateLimited, "Rate limited")]
    #[case(250, DropReason::Unknown, "250")]
    fn drop_reasons(#[case] code: u32, #[case] e: DropReason, #[case] text: &str) {
        assert_eq!(drop_reason_enum(code), e);
        assert_eq!(drop_reason_text(code), text);
    }

    #[test]
    fn every_abi_drop_code_is_a_proto_drop_reason() {
        use ebpf::drop_reason as d;
        for code in [
            d::POLICY_DENIED,
            d::INVALID_PACKET,
            d::CT_TRUNCATED_OR_INVALID_HEADER,
            d::CT_MAP_INSERTION_FAILED,
            d::UNKNOWN_L4_PROTOCOL,
            d::INVALID_IDENTITY,
            d::POLICY_DENY,
            d::TTL_EXCEEDED,
            d::RATE_LIMITED,
            d::EP_NOT_READY,
        ] {
            assert_ne!(drop_reason_enum(code.into()), DropReason::Unknown, "{code}");
        }
    }

    #[rstest]
    #[case(0, TraceObservationPoint::ToEndpoint, "to-endpoint")]
    #[case(1, TraceObservationPoint::ToProxy, "to-proxy")]
    #[case(3, TraceObservationPoint::ToStack, "to-stack")]
    #[case(5, TraceObservationPoint::FromEndpoint, "from-endpoint")]
    #[case(10, TraceObservationPoint::FromNetwork, "from-network")]
    #[case(11, TraceObservationPoint::ToNetwork, "to-network")]
    #[case(13, TraceObservationPoint::ToCrypto, "to-crypto")]
    fn obs_points(#[case] m: u8, #[case] p: TraceObservationPoint, #[case] name: &str) {
        assert_eq!(obs_point_to_proto(m), p);
        assert_eq!(obs_point_from_proto(p), Some(m));
        assert_eq!(obs_point_name(m), Some(name));
        assert_eq!(obs_point_from_name(name), Some(m));
    }

    #[test]
    fn unknown_obs_point() {
        assert_eq!(obs_point_to_proto(14), TraceObservationPoint::UnknownPoint);
        assert_eq!(obs_point_to_proto(101), TraceObservationPoint::UnknownPoint);
        assert_eq!(obs_point_name(200), None);
        assert_eq!(obs_point_from_name("to-nowhere"), None);
    }

    #[test]
    fn ct_states() {
        assert_eq!(is_reply(ct_state::REPLY), Some(true));
        assert_eq!(is_reply(ct_state::NEW), Some(false));
        assert_eq!(is_reply(ct_state::UNKNOWN), None);
        assert_eq!(
            trace_reason(ct_state::ESTABLISHED),
            TraceReason::Established
        );
        assert_eq!(trace_reason(99), TraceReason::Unknown);
        assert_eq!(policy_match_name(2), "L3-L4");
        assert_eq!(policy_match_name(9), "unknown");
    }
}
