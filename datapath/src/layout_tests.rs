//! Checks the `#[repr(C)]` mirrors in [`crate::maps`] against
//! `ebpf/include/dp_types.h`: a C program including the header is compiled
//! with the host `cc` and prints every struct size, field offset and
//! constant; each must equal the Rust side. Under CI a missing `cc` fails.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use crate::maps::*;

fn rust_side() -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = Vec::new();
    macro_rules! size {
        ($c:literal, $t:ty) => {
            v.push((format!("sizeof(struct {})", $c), size_of::<$t>() as u64));
        };
    }
    macro_rules! off {
        ($c:literal, $t:ty, [$($f:ident),+]) => {
            $(v.push((
                format!("offsetof(struct {}, {})", $c, stringify!($f)),
                offset_of!($t, $f) as u64,
            ));)+
        };
    }
    macro_rules! konst {
        ($c:literal, $val:expr) => {
            v.push(($c.to_string(), u64::from($val)));
        };
    }

    size!("endpoint_key", EndpointKey);
    off!("endpoint_key", EndpointKey, [ip4]);
    size!("endpoint_value", EndpointValue);
    off!(
        "endpoint_value",
        EndpointValue,
        [ifindex, pod_mac, node_mac, identity, ep_id, flags, pad]
    );
    size!("ipcache_key", IpcacheKey);
    off!("ipcache_key", IpcacheKey, [prefixlen, ip4]);
    size!("ipcache_value", IpcacheValue);
    off!("ipcache_value", IpcacheValue, [identity, tunnel_ep]);
    size!("policy_key", PolicyKey);
    off!(
        "policy_key",
        PolicyKey,
        [identity, ep_id, dport, proto, direction, pad]
    );
    size!("policy_value", PolicyValue);
    off!("policy_value", PolicyValue, [action, pad, rule]);
    size!("ct_key", CtKey);
    off!("ct_key", CtKey, [saddr, daddr, sport, dport, proto, pad]);
    size!("ct_value", CtValue);
    off!(
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
            pad
        ]
    );
    size!("dp_config", DpConfig);
    off!(
        "dp_config",
        DpConfig,
        [
            flags,
            aggregation,
            pad,
            report_interval_s,
            drop_events_per_s
        ]
    );
    size!("drop_stats_value", DropStatsValue);
    off!("drop_stats_value", DropStatsValue, [packets, bytes]);
    size!("drop_rl_value", DropRlValue);
    off!(
        "drop_rl_value",
        DropRlValue,
        [window_ns, emitted, suppressed]
    );

    konst!("DP_ID_HOST", identity::HOST);
    konst!("DP_ID_WORLD", identity::WORLD);
    konst!("DP_ID_UNMANAGED", identity::UNMANAGED);
    konst!("DP_ID_HEALTH", identity::HEALTH);
    konst!("DP_ID_INIT", identity::INIT);
    konst!("DP_ID_REMOTE_NODE", identity::REMOTE_NODE);
    konst!("DP_ID_KUBE_APISERVER", identity::KUBE_APISERVER);
    konst!("DP_ID_INGRESS", identity::INGRESS);
    konst!("DP_EP_F_ENFORCE_INGRESS", ep_flags::ENFORCE_INGRESS);
    konst!("DP_EP_F_ENFORCE_EGRESS", ep_flags::ENFORCE_EGRESS);
    konst!("DP_EP_F_AUDIT", ep_flags::AUDIT);
    konst!("DP_POLICY_ALLOW", PolicyAction::Allow as u8);
    konst!("DP_POLICY_DENY", PolicyAction::Deny as u8);
    konst!("DP_POLICY_AUDIT", PolicyAction::Audit as u8);
    konst!("DP_CT_F_SEEN_REPLY", ct_flags::SEEN_REPLY);
    konst!("DP_CT_F_FWD_CLOSING", ct_flags::FWD_CLOSING);
    konst!("DP_CT_F_REV_CLOSING", ct_flags::REV_CLOSING);
    konst!("DP_CT_F_RST", ct_flags::RST);
    konst!("DP_CT_LIFETIME_TCP_S", ct_lifetime::TCP_S);
    konst!("DP_CT_LIFETIME_NONTCP_S", ct_lifetime::NONTCP_S);
    konst!("DP_CT_SYN_TIMEOUT_S", ct_lifetime::SYN_TIMEOUT_S);
    konst!("DP_CT_CLOSE_TIMEOUT_S", ct_lifetime::CLOSE_TIMEOUT_S);
    konst!("DP_AGG_NONE", Aggregation::None as u8);
    konst!("DP_AGG_LOW", Aggregation::Low as u8);
    konst!("DP_AGG_MEDIUM", Aggregation::Medium as u8);
    konst!("DP_AGG_MAX", Aggregation::Max as u8);
    konst!("DP_CFG_F_SET", CFG_F_SET);
    konst!("DP_DEFAULT_AGGREGATION", crate::defaults::AGGREGATION as u8);
    konst!(
        "DP_DEFAULT_REPORT_INTERVAL_S",
        crate::defaults::REPORT_INTERVAL.as_secs()
    );
    konst!(
        "DP_DEFAULT_DROP_EVENTS_PER_S",
        crate::defaults::DROP_EVENTS_PER_SEC
    );
    konst!("DP_DROP_STATS_ENTRIES", DROP_STATS_ENTRIES);
    konst!("DP_EVENTS_RING_BYTES", crate::defaults::EVENTS_RING_BYTES);
    konst!("HUBBLE_DIR_INGRESS", Direction::Ingress as u8);
    konst!("HUBBLE_DIR_EGRESS", Direction::Egress as u8);
    v
}

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("datapath-layout-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create scratch dir");
        Self(p)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn dp_types_header_matches_rust_layout_and_constants() {
    let cc_ok = Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !cc_ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "no host C compiler `cc` under CI"
        );
        eprintln!("skipped: no host C compiler `cc` to compile dp_types.h");
        return;
    }
    let expected = rust_side();
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ebpf/include");
    let dir = ScratchDir::new();
    let src = dir.0.join("layout.c");
    let bin = dir.0.join("layout");
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
    let mismatches: Vec<String> = expected
        .iter()
        .filter(|(expr, rust)| c_side.get(expr) != Some(rust))
        .map(|(expr, rust)| format!("{expr}: C {:?}, Rust {rust}", c_side.get(expr)))
        .collect();
    assert!(
        mismatches.is_empty(),
        "dp_types.h mismatch:\n{}",
        mismatches.join("\n")
    );
}
