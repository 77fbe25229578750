//! Host-side interface naming: stable names derived from the container
//! interface, so DEL finds them without state; the pod interface's MTU.

use crate::defaults;

/// A stable 11-hex-digit tag of a container interface (FNV-1a 64).
fn tag(container_id: &str, ifname: &str) -> String {
    let h = format!("{container_id}/{ifname}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{h:016x}")[..11].to_string()
}

/// The host-side veth of a container interface (≤ 15 bytes, stable, so
/// DEL finds it without state).
pub fn host_iface(container_id: &str, ifname: &str) -> String {
    format!(
        "{}{}",
        defaults::HOST_IFACE_PREFIX,
        tag(container_id, ifname)
    )
}

/// The temporary name of the pod end before it is moved and renamed.
pub fn temp_iface(container_id: &str, ifname: &str) -> String {
    format!("tmp{}", tag(container_id, ifname))
}

/// The MTU of a pod interface and its host side: the agent's (the underlay
/// MTU minus the VXLAN overhead when the node runs the overlay) or the
/// network configuration's `mtu`, the smaller when both are given (a larger
/// MTU than the overlay carries fragments every full-size packet; a smaller
/// one is always safe). `None`: the kernel's default.
pub fn pod_mtu(conf: Option<u32>, agent: Option<u32>) -> Option<u32> {
    match (conf, agent) {
        (Some(c), Some(a)) => Some(c.min(a)),
        (c, a) => c.or(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_ifnamsiz_and_are_stable() {
        let h = host_iface("0123456789abcdef", "eth0");
        assert_eq!(h.len(), 14);
        assert_eq!(h, host_iface("0123456789abcdef", "eth0"));
        assert_ne!(h, host_iface("0123456789abcdef", "eth1"));
        assert!(temp_iface("x", "eth0").len() <= 15);
    }

    #[test]
    fn pod_mtu_takes_the_smaller_of_config_and_agent() {
        assert_eq!(pod_mtu(None, None), None);
        assert_eq!(pod_mtu(Some(1400), None), Some(1400));
        assert_eq!(pod_mtu(None, Some(1450)), Some(1450));
        assert_eq!(pod_mtu(Some(9000), Some(1450)), Some(1450));
        assert_eq!(pod_mtu(Some(1400), Some(1450)), Some(1400));
    }
}
