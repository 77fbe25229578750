//! Checks every Rust mirror of this crate against the C headers: a small C
//! program that includes `include/hubble_events.h` and `include/dp_types.h`
//! is compiled with the host `cc` and prints the size of every struct, the
//! offset of every field and the value of every constant; each line must
//! match the Rust side ([`crate::events`], [`crate::maps`],
//! [`crate::identity`]). Without `cc` the test is skipped, except under CI,
//! where a missing `cc` fails.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use crate::maps::*;
use crate::*;

/// `(C expression, Rust value)` for every size, offset and constant.
fn rust_side() -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = Vec::new();
    macro_rules! size {
        ($c:literal, $t:ty) => {
            v.push((format!("sizeof(struct {})", $c), size_of::<$t>() as u64));
        };
    }
    macro_rules! off {
        ($c:literal, $t:ty, $($f:tt)+) => {
            let name = stringify!($($f)+).trim_start_matches("r#").replace(' ', "");
            v.push((
                format!("offsetof(struct {}, {})", $c, name),
                offset_of!($t, $($f)+) as u64,
            ));
        };
    }
    macro_rules! offs {
        ($c:literal, $t:ty, [$($f:ident),+]) => {
            $(v.push((
                format!("offsetof(struct {}, {})", $c, stringify!($f)),
                offset_of!($t, $f) as u64,
            ));)+
        };
    }
    macro_rules! konst {
        ($c:literal, $val:expr) => {
            v.push(($c.to_string(), u64::try_from($val).expect("non-negative")));
        };
    }

    // ---- hubble_events.h: the event records ----------------------------
    size!("event_hdr", EventHdr);
    size!("trace_event", TraceEvent);
    size!("drop_event", DropEvent);
    size!("policy_verdict_event", PolicyVerdictEvent);
    size!("trace_sock_event", TraceSockEvent);
    offs!(
        "trace_sock_event",
        TraceSockEvent,
        [
            hdr,
            src_label,
            dst_label,
            src_ip,
            dst_ip,
            dst_port,
            l4_proto,
            flags,
            pad,
            sock_cookie,
            cgroup_id
        ]
    );

    off!("event_hdr", EventHdr, r#type);
    off!("event_hdr", EventHdr, subtype);
    off!("event_hdr", EventHdr, version);
    off!("event_hdr", EventHdr, flags);
    off!("event_hdr", EventHdr, source);
    off!("event_hdr", EventHdr, cap_len);
    off!("event_hdr", EventHdr, hash);
    off!("event_hdr", EventHdr, orig_len);
    off!("event_hdr", EventHdr, ktime_ns);

    off!("trace_event", TraceEvent, hdr);
    off!("trace_event", TraceEvent, src_label);
    off!("trace_event", TraceEvent, dst_label);
    off!("trace_event", TraceEvent, dst_id);
    off!("trace_event", TraceEvent, reason);
    off!("trace_event", TraceEvent, pad);
    off!("trace_event", TraceEvent, ifindex);

    off!("drop_event", DropEvent, hdr);
    off!("drop_event", DropEvent, src_label);
    off!("drop_event", DropEvent, dst_label);
    off!("drop_event", DropEvent, dst_id);
    off!("drop_event", DropEvent, line);
    off!("drop_event", DropEvent, file);
    off!("drop_event", DropEvent, ct_state);
    off!("drop_event", DropEvent, direction);
    off!("drop_event", DropEvent, pad);
    off!("drop_event", DropEvent, ifindex);
    off!("drop_event", DropEvent, rule);

    off!("policy_verdict_event", PolicyVerdictEvent, hdr);
    off!("policy_verdict_event", PolicyVerdictEvent, remote_label);
    off!("policy_verdict_event", PolicyVerdictEvent, local_label);
    off!("policy_verdict_event", PolicyVerdictEvent, verdict);
    off!("policy_verdict_event", PolicyVerdictEvent, dst_port);
    off!("policy_verdict_event", PolicyVerdictEvent, proto);
    off!("policy_verdict_event", PolicyVerdictEvent, direction);
    off!("policy_verdict_event", PolicyVerdictEvent, match_type);
    off!("policy_verdict_event", PolicyVerdictEvent, audited);
    off!("policy_verdict_event", PolicyVerdictEvent, reason);
    off!("policy_verdict_event", PolicyVerdictEvent, pad);
    off!("policy_verdict_event", PolicyVerdictEvent, ifindex);
    off!("policy_verdict_event", PolicyVerdictEvent, rule);
    off!("policy_verdict_event", PolicyVerdictEvent, pad2);

    konst!("HUBBLE_EVENT_VERSION", EVENT_VERSION);
    konst!("HUBBLE_CAPTURE_MAX", CAPTURE_MAX);

    konst!("HUBBLE_MSG_DROP", msg_type::DROP);
    konst!("HUBBLE_MSG_DEBUG", msg_type::DEBUG);
    konst!("HUBBLE_MSG_CAPTURE", msg_type::CAPTURE);
    konst!("HUBBLE_MSG_TRACE", msg_type::TRACE);
    konst!("HUBBLE_MSG_POLICY_VERDICT", msg_type::POLICY_VERDICT);
    konst!("HUBBLE_MSG_TRACE_SOCK", msg_type::TRACE_SOCK);
    konst!("HUBBLE_XLATE_UNKNOWN", xlate_point::UNKNOWN);
    konst!(
        "HUBBLE_XLATE_PRE_DIRECTION_FWD",
        xlate_point::PRE_DIRECTION_FWD
    );
    konst!(
        "HUBBLE_XLATE_POST_DIRECTION_FWD",
        xlate_point::POST_DIRECTION_FWD
    );
    konst!(
        "HUBBLE_XLATE_PRE_DIRECTION_REV",
        xlate_point::PRE_DIRECTION_REV
    );
    konst!(
        "HUBBLE_XLATE_POST_DIRECTION_REV",
        xlate_point::POST_DIRECTION_REV
    );
    konst!("HUBBLE_SOCK_L4_UNKNOWN", sock_l4::UNKNOWN);
    konst!("HUBBLE_SOCK_L4_TCP", sock_l4::TCP);
    konst!("HUBBLE_SOCK_L4_UDP", sock_l4::UDP);
    konst!("HUBBLE_SOCK_F_IPV6", sock_flags::IPV6);

    konst!("HUBBLE_TRACE_TO_LXC", trace_point::TO_LXC);
    konst!("HUBBLE_TRACE_TO_PROXY", trace_point::TO_PROXY);
    konst!("HUBBLE_TRACE_TO_HOST", trace_point::TO_HOST);
    konst!("HUBBLE_TRACE_TO_STACK", trace_point::TO_STACK);
    konst!("HUBBLE_TRACE_TO_OVERLAY", trace_point::TO_OVERLAY);
    konst!("HUBBLE_TRACE_FROM_LXC", trace_point::FROM_LXC);
    konst!("HUBBLE_TRACE_FROM_PROXY", trace_point::FROM_PROXY);
    konst!("HUBBLE_TRACE_FROM_HOST", trace_point::FROM_HOST);
    konst!("HUBBLE_TRACE_FROM_STACK", trace_point::FROM_STACK);
    konst!("HUBBLE_TRACE_FROM_OVERLAY", trace_point::FROM_OVERLAY);
    konst!("HUBBLE_TRACE_FROM_NETWORK", trace_point::FROM_NETWORK);
    konst!("HUBBLE_TRACE_TO_NETWORK", trace_point::TO_NETWORK);
    konst!("HUBBLE_TRACE_FROM_CRYPTO", trace_point::FROM_CRYPTO);
    konst!("HUBBLE_TRACE_TO_CRYPTO", trace_point::TO_CRYPTO);

    use drop_reason as d;
    konst!("HUBBLE_DROP_INVALID_SOURCE_IP", d::INVALID_SOURCE_IP);
    konst!("HUBBLE_DROP_POLICY_DENIED", d::POLICY_DENIED);
    konst!("HUBBLE_DROP_INVALID_PACKET", d::INVALID_PACKET);
    konst!(
        "HUBBLE_DROP_CT_TRUNCATED_OR_INVALID_HEADER",
        d::CT_TRUNCATED_OR_INVALID_HEADER
    );
    konst!(
        "HUBBLE_DROP_CT_MISSING_TCP_ACK_FLAG",
        d::CT_MISSING_TCP_ACK_FLAG
    );
    konst!(
        "HUBBLE_DROP_CT_UNKNOWN_L4_PROTOCOL",
        d::CT_UNKNOWN_L4_PROTOCOL
    );
    konst!(
        "HUBBLE_DROP_UNSUPPORTED_L3_PROTOCOL",
        d::UNSUPPORTED_L3_PROTOCOL
    );
    konst!("HUBBLE_DROP_MISSED_TAIL_CALL", d::MISSED_TAIL_CALL);
    konst!(
        "HUBBLE_DROP_ERROR_WRITING_TO_PACKET",
        d::ERROR_WRITING_TO_PACKET
    );
    konst!("HUBBLE_DROP_UNKNOWN_L4_PROTOCOL", d::UNKNOWN_L4_PROTOCOL);
    konst!("HUBBLE_DROP_UNKNOWN_ICMPV4_CODE", d::UNKNOWN_ICMPV4_CODE);
    konst!("HUBBLE_DROP_UNKNOWN_ICMPV4_TYPE", d::UNKNOWN_ICMPV4_TYPE);
    konst!("HUBBLE_DROP_UNKNOWN_ICMPV6_CODE", d::UNKNOWN_ICMPV6_CODE);
    konst!("HUBBLE_DROP_UNKNOWN_ICMPV6_TYPE", d::UNKNOWN_ICMPV6_TYPE);
    konst!(
        "HUBBLE_DROP_ERROR_RETRIEVING_TUNNEL_KEY",
        d::ERROR_RETRIEVING_TUNNEL_KEY
    );
    konst!(
        "HUBBLE_DROP_UNKNOWN_L3_TARGET_ADDRESS",
        d::UNKNOWN_L3_TARGET_ADDRESS
    );
    konst!(
        "HUBBLE_DROP_STALE_OR_UNROUTABLE_IP",
        d::STALE_OR_UNROUTABLE_IP
    );
    konst!(
        "HUBBLE_DROP_ERROR_WHILE_CORRECTING_L3_CHECKSUM",
        d::ERROR_WHILE_CORRECTING_L3_CHECKSUM
    );
    konst!(
        "HUBBLE_DROP_ERROR_WHILE_CORRECTING_L4_CHECKSUM",
        d::ERROR_WHILE_CORRECTING_L4_CHECKSUM
    );
    konst!(
        "HUBBLE_DROP_CT_MAP_INSERTION_FAILED",
        d::CT_MAP_INSERTION_FAILED
    );
    konst!(
        "HUBBLE_DROP_INVALID_IPV6_EXTENSION_HEADER",
        d::INVALID_IPV6_EXTENSION_HEADER
    );
    konst!(
        "HUBBLE_DROP_IP_FRAGMENTATION_NOT_SUPPORTED",
        d::IP_FRAGMENTATION_NOT_SUPPORTED
    );
    konst!(
        "HUBBLE_DROP_SERVICE_BACKEND_NOT_FOUND",
        d::SERVICE_BACKEND_NOT_FOUND
    );
    konst!(
        "HUBBLE_DROP_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
        d::NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT
    );
    konst!(
        "HUBBLE_DROP_UNKNOWN_CONNECTION_TRACKING_STATE",
        d::UNKNOWN_CONNECTION_TRACKING_STATE
    );
    konst!(
        "HUBBLE_DROP_LOCAL_HOST_IS_UNREACHABLE",
        d::LOCAL_HOST_IS_UNREACHABLE
    );
    konst!(
        "HUBBLE_DROP_UNSUPPORTED_L2_PROTOCOL",
        d::UNSUPPORTED_L2_PROTOCOL
    );
    konst!(
        "HUBBLE_DROP_NO_MAPPING_FOR_NAT_MASQUERADE",
        d::NO_MAPPING_FOR_NAT_MASQUERADE
    );
    konst!("HUBBLE_DROP_FIB_LOOKUP_FAILED", d::FIB_LOOKUP_FAILED);
    konst!("HUBBLE_DROP_INVALID_IDENTITY", d::INVALID_IDENTITY);
    konst!("HUBBLE_DROP_UNKNOWN_SENDER", d::UNKNOWN_SENDER);
    konst!("HUBBLE_DROP_IS_A_CLUSTERIP", d::IS_A_CLUSTERIP);
    konst!(
        "HUBBLE_DROP_FORBIDDEN_ICMPV6_MESSAGE",
        d::FORBIDDEN_ICMPV6_MESSAGE
    );
    konst!(
        "HUBBLE_DROP_DENIED_BY_LB_SRC_RANGE_CHECK",
        d::DENIED_BY_LB_SRC_RANGE_CHECK
    );
    konst!("HUBBLE_DROP_POLICY_DENY", d::POLICY_DENY);
    konst!("HUBBLE_DROP_VLAN_FILTERED", d::VLAN_FILTERED);
    konst!("HUBBLE_DROP_AUTH_REQUIRED", d::AUTH_REQUIRED);
    konst!("HUBBLE_DROP_NO_EGRESS_GATEWAY", d::NO_EGRESS_GATEWAY);
    konst!("HUBBLE_DROP_UNENCRYPTED_TRAFFIC", d::UNENCRYPTED_TRAFFIC);
    konst!("HUBBLE_DROP_TTL_EXCEEDED", d::TTL_EXCEEDED);
    konst!("HUBBLE_DROP_RATE_LIMITED", d::RATE_LIMITED);
    konst!("HUBBLE_DROP_HOST_NOT_READY", d::HOST_NOT_READY);
    konst!("HUBBLE_DROP_EP_NOT_READY", d::EP_NOT_READY);

    konst!("HUBBLE_CT_UNKNOWN", ct_state::UNKNOWN);
    konst!("HUBBLE_CT_NEW", ct_state::NEW);
    konst!("HUBBLE_CT_ESTABLISHED", ct_state::ESTABLISHED);
    konst!("HUBBLE_CT_REPLY", ct_state::REPLY);
    konst!("HUBBLE_CT_RELATED", ct_state::RELATED);

    konst!("HUBBLE_POLICY_MATCH_NONE", policy_match::NONE);
    konst!("HUBBLE_POLICY_MATCH_L3_ONLY", policy_match::L3_ONLY);
    konst!("HUBBLE_POLICY_MATCH_L3_L4", policy_match::L3_L4);
    konst!("HUBBLE_POLICY_MATCH_L4_ONLY", policy_match::L4_ONLY);
    konst!("HUBBLE_POLICY_MATCH_ALL", policy_match::ALL);

    konst!("HUBBLE_DIR_UNKNOWN", direction::UNKNOWN);
    konst!("HUBBLE_DIR_INGRESS", direction::INGRESS);
    konst!("HUBBLE_DIR_EGRESS", direction::EGRESS);

    konst!("HUBBLE_EVENT_F_L3_PACKET", event_flags::L3_PACKET);
    konst!("HUBBLE_SRC_FILE_UNKNOWN", src_file::UNKNOWN);
    konst!("HUBBLE_SRC_FILE_TEST_EMIT", src_file::TEST_EMIT);
    konst!("HUBBLE_SRC_FILE_LXC", src_file::LXC);

    // ---- dp_types.h: the datapath maps -----------------------------------
    size!("endpoint_key", EndpointKey);
    offs!("endpoint_key", EndpointKey, [ip4]);
    size!("endpoint_value", EndpointValue);
    offs!(
        "endpoint_value",
        EndpointValue,
        [ifindex, pod_mac, node_mac, identity, ep_id, flags, pad]
    );
    size!("ipcache_key", IpcacheKey);
    offs!("ipcache_key", IpcacheKey, [prefixlen, ip4]);
    size!("ipcache_value", IpcacheValue);
    offs!("ipcache_value", IpcacheValue, [identity, tunnel_ep]);
    size!("policy_key", PolicyKey);
    offs!(
        "policy_key",
        PolicyKey,
        [
            prefixlen, ep_id, direction, pad, identity, proto, pad2, dport
        ]
    );
    size!("policy_value", PolicyValue);
    offs!("policy_value", PolicyValue, [action, flags, pad, rule]);
    size!("ct_key", CtKey);
    offs!("ct_key", CtKey, [saddr, daddr, sport, dport, proto, pad]);
    size!("ct_value", CtValue);
    offs!(
        "ct_value",
        CtValue,
        [
            created_ns,
            expires_ns,
            fwd_packets,
            fwd_bytes,
            rev_packets,
            rev_bytes,
            fwd_report_ns,
            rev_report_ns,
            src_identity,
            dst_identity,
            src_ep,
            dst_ep,
            fwd_flags_seen,
            rev_flags_seen,
            fwd_flags_reported,
            rev_flags_reported,
            flags,
            pad,
            rev_nat_id,
            backend_id,
            tunnel_ep,
            pad2
        ]
    );
    size!("lb4_key", Lb4Key);
    offs!(
        "lb4_key",
        Lb4Key,
        [vip, dport, proto, scope, backend_slot, pad]
    );
    size!("lb4_service", Lb4Service);
    offs!(
        "lb4_service",
        Lb4Service,
        [
            backend_id,
            count,
            qcount,
            rev_nat_id,
            flags,
            algorithm,
            affinity_timeout_s
        ]
    );
    size!("lb4_backend", Lb4Backend);
    offs!("lb4_backend", Lb4Backend, [ip, port, proto, flags]);
    size!("lb4_reverse_nat", Lb4ReverseNat);
    offs!("lb4_reverse_nat", Lb4ReverseNat, [vip, port, flags, pad]);
    size!("lb4_affinity_key", Lb4AffinityKey);
    offs!(
        "lb4_affinity_key",
        Lb4AffinityKey,
        [client_ip, rev_nat_id, pad]
    );
    size!("lb4_affinity_value", Lb4AffinityValue);
    offs!(
        "lb4_affinity_value",
        Lb4AffinityValue,
        [last_used_ns, backend_id, pad]
    );
    size!("dp_config", DpConfig);
    offs!(
        "dp_config",
        DpConfig,
        [
            flags,
            aggregation,
            pad,
            report_interval_s,
            drop_events_per_s,
            tunnel_ifindex,
            pad2
        ]
    );
    size!("drop_stats_value", DropStatsValue);
    offs!("drop_stats_value", DropStatsValue, [packets, bytes]);
    size!("metrics_value", MetricsValue);
    offs!("metrics_value", MetricsValue, [count, bytes]);
    size!("drop_rl_value", DropRlValue);
    offs!(
        "drop_rl_value",
        DropRlValue,
        [window_ns, emitted, suppressed]
    );

    konst!("DP_ID_UNKNOWN", identity::UNKNOWN);
    konst!("DP_ID_HOST", identity::HOST);
    konst!("DP_ID_WORLD", identity::WORLD);
    konst!("DP_ID_UNMANAGED", identity::UNMANAGED);
    konst!("DP_ID_HEALTH", identity::HEALTH);
    konst!("DP_ID_INIT", identity::INIT);
    konst!("DP_ID_REMOTE_NODE", identity::REMOTE_NODE);
    konst!("DP_ID_KUBE_APISERVER", identity::KUBE_APISERVER);
    konst!("DP_ID_INGRESS", identity::INGRESS);
    konst!("DP_ID_WORLD_IPV4", identity::WORLD_IPV4);
    konst!("DP_ID_WORLD_IPV6", identity::WORLD_IPV6);
    konst!("DP_EP_F_ENFORCE_INGRESS", ep_flags::ENFORCE_INGRESS);
    konst!("DP_EP_F_ENFORCE_EGRESS", ep_flags::ENFORCE_EGRESS);
    konst!("DP_EP_F_AUDIT", ep_flags::AUDIT);
    konst!("DP_POLICY_ALLOW", PolicyAction::Allow as u8);
    konst!("DP_POLICY_DENY", PolicyAction::Deny as u8);
    konst!("DP_POLICY_AUDIT", PolicyAction::Audit as u8);
    konst!("DP_POLICY_F_L4", policy_flags::L4);
    konst!("DP_POLICY_PREFIX_L3", policy_prefix::L3);
    konst!("DP_POLICY_PREFIX_PROTO", policy_prefix::PROTO);
    konst!("DP_POLICY_PREFIX_FULL", policy_prefix::FULL);
    konst!("DP_CT_F_SEEN_REPLY", ct_flags::SEEN_REPLY);
    konst!("DP_CT_F_FWD_CLOSING", ct_flags::FWD_CLOSING);
    konst!("DP_CT_F_REV_CLOSING", ct_flags::REV_CLOSING);
    konst!("DP_CT_F_RST", ct_flags::RST);
    konst!("DP_CT_F_SERVICE", ct_flags::SERVICE);
    konst!("DP_LB_F_NODEPORT", lb_flags::NODEPORT);
    konst!("DP_LB_F_AFFINITY", lb_flags::AFFINITY);
    konst!("DP_LB_ALG_RANDOM", LbAlgorithm::Random as u8);
    konst!("DP_LB_ALG_MAGLEV", LbAlgorithm::Maglev as u8);
    konst!("DP_LB_BACKEND_F_TERMINATING", lb_backend_flags::TERMINATING);
    konst!("DP_LB_RNAT_F_NODEPORT", lb_rnat_flags::NODEPORT);
    konst!("DP_LB_MAGLEV_M", LB_MAGLEV_M);
    konst!("DP_LB_MAGLEV_SERVICES", LB_MAGLEV_SERVICES);
    konst!("DP_LB_MAX_PROBE", LB_MAX_PROBE);
    konst!("DP_LB_HAIRPIN_IP4", u32::from(LB_HAIRPIN_IP));
    konst!("DP_LB_STAT_NEW", lb_stat::NEW);
    konst!("DP_LB_STAT_DNAT", lb_stat::DNAT);
    konst!("DP_LB_STAT_REV_NAT", lb_stat::REV_NAT);
    konst!("DP_LB_STAT_ENTRIES", lb_stat::ENTRIES);
    konst!("DP_CT_LIFETIME_TCP_S", ct_lifetime::TCP_S);
    konst!("DP_CT_LIFETIME_NONTCP_S", ct_lifetime::NONTCP_S);
    konst!("DP_CT_SYN_TIMEOUT_S", ct_lifetime::SYN_TIMEOUT_S);
    konst!("DP_CT_CLOSE_TIMEOUT_S", ct_lifetime::CLOSE_TIMEOUT_S);
    konst!("DP_AGG_NONE", Aggregation::None as u8);
    konst!("DP_AGG_LOW", Aggregation::Low as u8);
    konst!("DP_AGG_MEDIUM", Aggregation::Medium as u8);
    konst!("DP_AGG_MAX", Aggregation::Max as u8);
    konst!("DP_CFG_F_SET", CFG_F_SET);
    konst!("DP_DEFAULT_AGGREGATION", defaults::AGGREGATION as u8);
    konst!("DP_DEFAULT_REPORT_INTERVAL_S", defaults::REPORT_INTERVAL_S);
    konst!("DP_DEFAULT_DROP_EVENTS_PER_S", defaults::DROP_EVENTS_PER_S);
    konst!("DP_DROP_STATS_ENTRIES", DROP_STATS_ENTRIES);
    konst!("DP_METRICS_ENTRIES", METRICS_ENTRIES);
    konst!("DP_METRICS_DIRS", METRICS_DIRS);
    konst!("DP_METRICS_INDEX(7, 2)", metrics_index(7, 2));
    konst!("DP_METRICS_INDEX(0, 1)", metrics_index(0, 1));
    konst!("DP_EVENTS_RING_BYTES", defaults::EVENTS_RING_BYTES);
    konst!("(__u8)HUBBLE_DIR_INGRESS", Direction::Ingress as u8);
    konst!("(__u8)HUBBLE_DIR_EGRESS", Direction::Egress as u8);

    // The reserved-identity table: each reserved identity (those the
    // datapath assigns and the world-ipv4/-ipv6 split) is the C macro
    // `DP_ID_<NAME>` of its number.
    for (id, name) in identity::LABELLED {
        let c = format!(
            "(__u32)DP_ID_{}",
            name.to_ascii_uppercase().replace('-', "_")
        );
        v.push((c, u64::from(*id)));
    }
    v
}

fn cc_available() -> bool {
    Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn c_headers_match_rust_layout_and_constants() {
    if !cc_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no host C compiler `cc` under CI"
        );
        eprintln!("skipped: no host C compiler `cc` to compile include/*.h");
        return;
    }
    let expected = rust_side();
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include");
    let dir = test_support::TempDir::new("hubble-abi-layout-");
    let src = dir.join("layout.c");
    let bin = dir.join("layout");

    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"dp_types.h\"\n#include \"hubble_events.h\"\nint main(void) {\n",
    );
    for (expr, _) in &expected {
        c.push_str(&format!(
            "  printf(\"%s=%llu\\n\", \"{expr}\", (unsigned long long)({expr}));\n"
        ));
    }
    c.push_str("  return 0;\n}\n");
    std::fs::write(&src, c).expect("write layout.c");

    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&bin).output().expect("run layout program");
    assert!(run.status.success());
    let c_side: BTreeMap<String, u64> = String::from_utf8(run.stdout)
        .expect("utf8")
        .lines()
        .filter_map(|l| l.rsplit_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().expect("number")))
        .collect();

    let mut mismatches = Vec::new();
    for (expr, rust) in &expected {
        match c_side.get(expr) {
            Some(c) if c == rust => {}
            other => mismatches.push(format!("{expr}: C {other:?}, Rust {rust}")),
        }
    }
    assert!(
        mismatches.is_empty(),
        "ABI mismatch:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(c_side.len(), expected.len());
}
