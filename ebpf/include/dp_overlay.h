/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dp_overlay.h - the VXLAN overlay between nodes, Cilium's tunnel mode.
 *
 * Every node has one VXLAN device in external (collect_md) mode, made by the
 * loader (datapath/src/kernel/tunnel.rs) in the node netns; its ifindex is
 * dp_config.tunnel_ifindex. No FDB, no per-peer devices: the programs set
 * the outer destination and the VNI per packet.
 *
 * - Send (from_container): a destination whose ipcache entry names a
 *   hosting node (`tunnel_ep`) is encapsulated towards that node with the
 *   SOURCE security identity as the VNI, then redirected to the device.
 * - Receive (from_overlay, TCX ingress of the device): the VNI is the
 *   sender's identity. The receiving node polices on it directly, without
 *   looking the inner source address up in its ipcache, so identity-based
 *   policy holds across nodes even while the ipcache lags behind.
 *
 * Constraints (notes/kernel-facts.md §3):
 * - the VNI has 24 bits and the kernel truncates silently, so identities of
 *   2^24 and above cannot travel and are dropped (INVALID_IDENTITY);
 * - bpf_tunnel_key.remote_ipv4 is in HOST byte order (so is tunnel_ep);
 * - pods need MTU = underlay MTU - 50 (VXLAN over IPv4), or every full-size
 *   packet is carried in fragmented outer UDP; the CNI plugin sets it.
 */
#ifndef DP_OVERLAY_H
#define DP_OVERLAY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "hubble_events.h"

/* Outer TTL of encapsulated packets (Cilium's IPDEFTTL). */
#define DP_TUNNEL_TTL 64
/* The largest identity a 24-bit VNI carries. */
#define DP_TUNNEL_VNI_MAX 0xffffff

/* Sets the tunnel metadata: outer destination `tunnel_ep` (host order),
 * VNI = `identity`. Returns 0 or a HUBBLE_DROP_* code. The packet itself is
 * not touched (the VXLAN device encapsulates on xmit). */
static __always_inline int dp_overlay_encap(struct __sk_buff *skb, __u32 tunnel_ep,
					    __u32 identity)
{
	struct bpf_tunnel_key key;

	if (identity > DP_TUNNEL_VNI_MAX)
		return HUBBLE_DROP_INVALID_IDENTITY;
	__builtin_memset(&key, 0, sizeof(key));
	key.remote_ipv4 = tunnel_ep;
	key.tunnel_id = identity;
	key.tunnel_ttl = DP_TUNNEL_TTL;
	/* No UDP checksum: the inner packet carries its own (Cilium does the same). */
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return HUBBLE_DROP_ERROR_WRITING_TO_PACKET;
	return 0;
}

/* The sender's security identity and node (outer source, host order) from
 * the tunnel metadata of a packet the VXLAN device received. Returns 0 or
 * HUBBLE_DROP_ERROR_RETRIEVING_TUNNEL_KEY (no metadata: not decapsulated by
 * an external-mode device). */
static __always_inline int dp_overlay_identity(struct __sk_buff *skb, __u32 *identity,
					       __u32 *node)
{
	struct bpf_tunnel_key key;

	__builtin_memset(&key, 0, sizeof(key));
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return HUBBLE_DROP_ERROR_RETRIEVING_TUNNEL_KEY;
	*identity = key.tunnel_id;
	*node = key.remote_ipv4;
	return 0;
}

#endif /* DP_OVERLAY_H */
