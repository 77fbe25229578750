// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lxc.bpf.c - the pod datapath: tc programs on the host side of pod veths.
 *
 * from_container  TCX ingress of the host-side veth: everything a pod sends.
 *   - ARP requests from the pod are answered here with the host-side veth's
 *     MAC (the pod's gateway), the reply is sent back out of the same veth.
 *   - IPv4: source validated against the endpoint on this veth, egress
 *     policy of the source on new connections, then either
 *     * a local destination: ingress policy of the destination, MAC rewrite,
 *       bpf_redirect_peer into the destination pod (the node stack and the
 *       destination's own host-veth programs are bypassed), or
 *     * a destination whose ipcache entry names a hosting node (tunnel_ep),
 *       when the node has a tunnel device (dp_config.tunnel_ifindex): tunnel
 *       key to that node with the source identity as VNI, bpf_redirect to
 *       the VXLAN device (dp_overlay.h); the receiving node polices ingress,
 *     * anything else: up the node stack (TC_ACT_OK), which routes it.
 *   - Other L3 protocols are dropped (IPv4-only datapath).
 * to_container    TCX egress of the host-side veth: what the node stack
 *   delivers to the pod (from the node itself or routed from elsewhere);
 *   ingress policy of the pod on new connections.
 * from_overlay    TCX ingress of the node's VXLAN device (external mode):
 *   what other nodes' pods send to ours. The source identity is the VNI
 *   (never an ipcache lookup of the inner source); a local destination gets
 *   conntrack, its ingress policy on new connections, MAC rewrite and
 *   bpf_redirect_peer; anything else goes to the node stack.
 *
 * from_netdev     TCX ingress of the node's external (underlay) device:
 *   NodePort. A packet to a NodePort frontend (node IP:nodePort) from
 *   outside is translated like a pod's (dp_lb.h) and delivered to a local
 *   backend, or through the overlay with the client's identity (world) to
 *   the backend's node, which sends the replies back through this node
 *   (ct_value.tunnel_ep); replies leave with the frontend as source,
 *   straight out of the device the FIB picks (dp_lb_fib_redirect). All
 *   other traffic is left to the node stack untouched.
 *
 * Services (dp_lb.h): in from_container, a packet to a service frontend is
 * given a backend before conntrack and policy (which then see the backend
 * and its identity) and DNATed after the from-endpoint trace (which still
 * shows the frontend); a reply of a translated connection gets the frontend
 * back as its source in from_container, to_container and from_overlay,
 * before it is delivered. A frontend without a usable backend drops with
 * SERVICE_BACKEND_NOT_FOUND.
 *
 * Events (hubble_events.h): traces from-endpoint, to-endpoint, to-stack,
 * from-stack, to-overlay, from-overlay subject to aggregation; a policy
 * verdict per policy decision (only new connections reach policy); a drop
 * event for every drop (rate limited), with both identities; two trace-sock
 * records (pre- and post-translation) for every new connection to a
 * service frontend, at every aggregation level (dp_lb4_trace_xlate), and
 * for every UDP reply to a local client at aggregation none
 * (dp_lb4_trace_rev).
 *
 * Build: clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu \
 *            -Iebpf/include -c ebpf/bpf/lxc.bpf.c -o lxc.bpf.o
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "hubble_events.h"
#include "dp_types.h"
#include "dp_maps.h"
#include "dp_parse.h"
#include "dp_events.h"
#include "dp_ipcache.h"
#include "dp_conntrack.h"
#include "dp_policy.h"
#include "dp_overlay.h"
#include "dp_lb.h"

/* Answers an ARP request of a known pod on this veth with the veth's MAC. */
static __always_inline int handle_arp(struct __sk_buff *skb)
{
	struct dp_arp arp;
	struct endpoint_value *ep;
	__u8 pod_mac[6], node_mac[6];
	__be32 target;

	if (bpf_skb_load_bytes(skb, DP_ETH_HLEN, &arp, sizeof(arp)) < 0)
		return TC_ACT_OK;
	if (arp.htype != bpf_htons(1) || arp.ptype != bpf_htons(ETH_P_IP) || arp.hlen != 6 ||
	    arp.plen != 4 || arp.op != bpf_htons(DP_ARPOP_REQUEST))
		return TC_ACT_OK;
	/* Gratuitous ARP / duplicate address detection: nothing to answer. */
	if (arp.tpa == arp.spa || arp.spa == 0)
		return TC_ACT_OK;
	ep = dp_lookup_endpoint(arp.spa);
	if (!ep || ep->ifindex != skb->ifindex)
		return TC_ACT_OK;
	__builtin_memcpy(pod_mac, arp.sha, 6);
	__builtin_memcpy(node_mac, ep->node_mac, 6);
	target = arp.tpa;

	arp.op = bpf_htons(DP_ARPOP_REPLY);
	__builtin_memcpy(arp.tha, pod_mac, 6);
	arp.tpa = arp.spa;
	__builtin_memcpy(arp.sha, node_mac, 6);
	arp.spa = target;
	if (bpf_skb_store_bytes(skb, 0, pod_mac, 6, 0) < 0 ||
	    bpf_skb_store_bytes(skb, 6, node_mac, 6, 0) < 0 ||
	    bpf_skb_store_bytes(skb, DP_ETH_HLEN, &arp, sizeof(arp), 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* Delivers the packet into the local pod `dst`: the pod must see its
 * gateway as the sender (dst MAC = pod, src MAC = host-side veth), then
 * bpf_redirect_peer (tc ingress only, notes/kernel-facts.md §2). */
static __always_inline int deliver_local(struct __sk_buff *skb, const struct dp_config *cfg,
					 const struct endpoint_value *dst, __u16 source,
					 const struct dp_peers *peers, __u8 ct_state, __u8 report)
{
	__u8 macs[12];
	__u32 ifindex = dst->ifindex;

	__builtin_memcpy(macs, dst->pod_mac, 6);
	__builtin_memcpy(macs + 6, dst->node_mac, 6);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return dp_drop(skb, cfg, HUBBLE_DROP_ERROR_WRITING_TO_PACKET, source, peers,
			       ct_state, HUBBLE_DIR_UNKNOWN, __LINE__);
	dp_emit_trace(skb, cfg, HUBBLE_TRACE_TO_LXC, peers->dst_ep, peers, ct_state, report,
		      ifindex);
	return bpf_redirect_peer(ifindex, 0);
}

/* Admits a NEW connection to the local pod `dst` from `peers->src_identity`:
 * the pod's ingress policy when it enforces one (with a policy-verdict event
 * reporting interface `ifindex`), then the conntrack entry. Returns
 * TC_ACT_UNSPEC (-1) to go on, else the action of the drop it reported.
 * `from_node`: the node it came from through the overlay (host order), 0
 * if none; replies to a peer without a route go back there.
 * Shared by every path into a pod that did not already police the
 * destination: from the stack (to_container) and from the overlay. */
static __always_inline int admit_ingress(struct __sk_buff *skb, const struct dp_config *cfg,
					 struct endpoint_value *dst, struct dp_peers *peers,
					 struct dp_pkt *p, __u64 now, __u32 ifindex, __u32 from_node)
{
	struct dp_verdict v;
	int ret;

	if (dst->flags & DP_EP_F_ENFORCE_INGRESS) {
		ret = dp_policy_decide(dst, HUBBLE_DIR_INGRESS, peers->src_identity, p, &v);
		dp_emit_verdict(skb, dst->ep_id, dst->identity, peers->src_identity, p, &v,
				ifindex);
		if (ret)
			return dp_drop_rule(skb, cfg, ret, dst->ep_id, peers, HUBBLE_CT_NEW,
				       HUBBLE_DIR_INGRESS, __LINE__, v.rule);
	}
	ret = dp_ct_create(p, peers, now, 0, from_node);
	if (ret)
		return dp_drop(skb, cfg, ret, dst->ep_id, peers, HUBBLE_CT_NEW, HUBBLE_DIR_INGRESS,
			       __LINE__);
	return TC_ACT_UNSPEC;
}

SEC("classifier")
int from_container(struct __sk_buff *skb)
{
	struct dp_config cfg;
	struct dp_pkt p = {};
	struct dp_peers peers = {};
	struct endpoint_value *src, *dst;
	struct dp_verdict v;
	struct dp_lb lb = {};
	struct dp_ct_info info;
	__u64 now;
	__u32 tunnel_ep = 0, self = 0, hairpin = 0;
	__u16 eth_proto;
	__u8 ct_state, report, rnat_flags = 0;
	int ret;

	dp_load_config(&cfg);
	eth_proto = dp_eth_proto(skb);
	if (eth_proto == ETH_P_ARP)
		return handle_arp(skb);
	if (eth_proto != ETH_P_IP)
		return dp_drop(skb, &cfg, HUBBLE_DROP_UNSUPPORTED_L3_PROTOCOL, 0, &peers,
			       HUBBLE_CT_UNKNOWN, HUBBLE_DIR_EGRESS, __LINE__);

	ret = dp_parse_ipv4(skb, &p);
	if (ret == HUBBLE_DROP_INVALID_PACKET)
		return dp_drop(skb, &cfg, ret, 0, &peers, HUBBLE_CT_UNKNOWN, HUBBLE_DIR_EGRESS,
			       __LINE__);

	/* Who is talking: the source must be the endpoint behind this veth. */
	src = dp_lookup_endpoint(p.saddr);
	if (!src || src->ifindex != skb->ifindex) {
		peers.src_identity = DP_ID_UNKNOWN;
		peers.dst_identity = dp_resolve_identity(p.daddr, &dst);
		peers.dst_ep = dst ? dst->ep_id : 0;
		return dp_drop(skb, &cfg, HUBBLE_DROP_INVALID_SOURCE_IP, 0, &peers,
			       HUBBLE_CT_UNKNOWN, HUBBLE_DIR_EGRESS, __LINE__);
	}
	peers.src_identity = src->identity;
	peers.src_ep = src->ep_id;
	peers.dst_identity = dp_resolve_peer(p.daddr, &dst, &tunnel_ep);
	peers.dst_ep = dst ? dst->ep_id : 0;

	if (ret)
		return dp_drop(skb, &cfg, ret, src->ep_id, &peers, HUBBLE_CT_UNKNOWN,
			       HUBBLE_DIR_EGRESS, __LINE__);
	ret = dp_parse_l4(skb, &p);
	if (ret)
		return dp_drop(skb, &cfg, ret, src->ep_id, &peers, HUBBLE_CT_UNKNOWN,
			       HUBBLE_DIR_EGRESS, __LINE__);

	now = bpf_ktime_get_boot_ns();
	/* A service frontend: choose the backend first, so that conntrack and
	 * policy see the backend (dp_lb.h). */
	ret = dp_lb4_select(&p, now, &lb, 0);
	if (ret)
		return dp_drop(skb, &cfg, ret, src->ep_id, &peers, HUBBLE_CT_NEW,
			       HUBBLE_DIR_EGRESS, __LINE__);
	if (lb.is_service) {
		tunnel_ep = 0;
		peers.dst_identity = dp_resolve_peer(lb.backend_ip, &dst, &tunnel_ep);
		peers.dst_ep = dst ? dst->ep_id : 0;
		/* Before p changes: the tuple as sent names the frontend. */
		dp_lb4_trace_xlate(&p, &lb, src->ep_id, src->identity, peers.dst_identity);
		p.daddr = lb.backend_ip;
		p.dport = lb.backend_port;
		p.policy_port = lb.backend_port;
		/* Hairpin: the client is its own backend. */
		if (p.daddr == p.saddr) {
			hairpin = bpf_htonl(DP_LB_HAIRPIN_IP4);
			p.saddr = hairpin;
		}
	}
	ct_state = dp_ct_lookup(&p, &cfg, now, &report, &info);
	/* Still the frame as sent: from-endpoint shows the frontend. */
	dp_emit_trace(skb, &cfg, HUBBLE_TRACE_FROM_LXC, src->ep_id, &peers, ct_state, report,
		      skb->ifindex);
	if (lb.is_service) {
		ret = dp_lb4_dnat(skb, &p, &lb);
		if (!ret && hairpin)
			ret = dp_lb4_rewrite(skb, &p, 0, lb.backend_ip, hairpin, p.sport, p.sport);
	} else if (ct_state == HUBBLE_CT_REPLY) {
		self = p.saddr;
		ret = dp_lb4_rev_nat(skb, &cfg, &p, &peers, info.rev_nat_id, &rnat_flags);
		/* The reply of a hairpin connection goes back into its sender. */
		if (!ret && info.rev_nat_id && p.daddr == bpf_htonl(DP_LB_HAIRPIN_IP4)) {
			ret = dp_lb4_rewrite(skb, &p, 1, p.daddr, self, p.dport, p.dport);
			p.daddr = self;
			dst = src;
			peers.dst_identity = src->identity;
			peers.dst_ep = src->ep_id;
		}
	}
	if (ret)
		return dp_drop(skb, &cfg, ret, src->ep_id, &peers, ct_state, HUBBLE_DIR_UNKNOWN,
			       __LINE__);

	if (ct_state == HUBBLE_CT_NEW) {
		if (src->flags & DP_EP_F_ENFORCE_EGRESS) {
			ret = dp_policy_decide(src, HUBBLE_DIR_EGRESS, peers.dst_identity, &p, &v);
			dp_emit_verdict(skb, src->ep_id, src->identity, peers.dst_identity, &p, &v,
					skb->ifindex);
			if (ret)
				return dp_drop_rule(skb, &cfg, ret, src->ep_id, &peers, HUBBLE_CT_NEW,
					       HUBBLE_DIR_EGRESS, __LINE__, v.rule);
		}
		if (dst && (dst->flags & DP_EP_F_ENFORCE_INGRESS)) {
			ret = dp_policy_decide(dst, HUBBLE_DIR_INGRESS, peers.src_identity, &p, &v);
			dp_emit_verdict(skb, dst->ep_id, dst->identity, peers.src_identity, &p, &v,
					dst->ifindex);
			if (ret)
				return dp_drop_rule(skb, &cfg, ret, dst->ep_id, &peers, HUBBLE_CT_NEW,
					       HUBBLE_DIR_INGRESS, __LINE__, v.rule);
		}
		ret = dp_ct_create(&p, &peers, now, lb.is_service ? lb.rev_nat_id : 0, 0);
		if (ret)
			return dp_drop(skb, &cfg, ret, src->ep_id, &peers, HUBBLE_CT_NEW,
				       HUBBLE_DIR_EGRESS, __LINE__);
	}

	if (dst)
		return deliver_local(skb, &cfg, dst, src->ep_id, &peers, ct_state, report);

	/* A reply to a peer without a route of its own (an external client of
	 * a NodePort on another node) goes back through the node it came from. */
	if (!tunnel_ep && ct_state == HUBBLE_CT_REPLY)
		tunnel_ep = info.tunnel_ep;
	/* A pod on another node: into the overlay, carrying our identity. */
	if (tunnel_ep && cfg.tunnel_ifindex) {
		ret = dp_overlay_encap(skb, tunnel_ep, src->identity);
		if (ret)
			return dp_drop(skb, &cfg, ret, src->ep_id, &peers, ct_state,
				       HUBBLE_DIR_UNKNOWN, __LINE__);
		dp_emit_trace(skb, &cfg, HUBBLE_TRACE_TO_OVERLAY, src->ep_id, &peers, ct_state,
			      report, cfg.tunnel_ifindex);
		return bpf_redirect(cfg.tunnel_ifindex, 0);
	}

	/* A NodePort reply, now from a node address: straight out. */
	if (rnat_flags & DP_LB_RNAT_F_NODEPORT) {
		dp_emit_trace(skb, &cfg, HUBBLE_TRACE_TO_NETWORK, src->ep_id, &peers, ct_state,
			      report, 0);
		return dp_lb_fib_redirect(skb, &p);
	}
	dp_emit_trace(skb, &cfg, HUBBLE_TRACE_TO_STACK, src->ep_id, &peers, ct_state, report,
		      skb->ifindex);
	return TC_ACT_OK;
}

SEC("classifier")
int to_container(struct __sk_buff *skb)
{
	struct dp_config cfg;
	struct dp_pkt p = {};
	struct dp_peers peers = {};
	struct endpoint_value *src, *dst;
	struct dp_ct_info info;
	__u64 now;
	__u16 eth_proto;
	__u8 ct_state, report, rnat_flags;
	int ret;

	dp_load_config(&cfg);
	eth_proto = dp_eth_proto(skb);
	if (eth_proto == ETH_P_ARP)
		return TC_ACT_OK; /* the node resolving the pod's address */
	if (eth_proto != ETH_P_IP)
		return dp_drop(skb, &cfg, HUBBLE_DROP_UNSUPPORTED_L3_PROTOCOL, 0, &peers,
			       HUBBLE_CT_UNKNOWN, HUBBLE_DIR_INGRESS, __LINE__);

	ret = dp_parse_ipv4(skb, &p);
	if (ret == HUBBLE_DROP_INVALID_PACKET)
		return dp_drop(skb, &cfg, ret, 0, &peers, HUBBLE_CT_UNKNOWN, HUBBLE_DIR_INGRESS,
			       __LINE__);

	dst = dp_lookup_endpoint(p.daddr);
	if (!dst)
		return TC_ACT_OK; /* not for a pod (broadcast and the like): not ours */
	peers.dst_identity = dst->identity;
	peers.dst_ep = dst->ep_id;
	peers.src_identity = dp_resolve_identity(p.saddr, &src);
	peers.src_ep = src ? src->ep_id : 0;

	if (ret)
		return dp_drop(skb, &cfg, ret, dst->ep_id, &peers, HUBBLE_CT_UNKNOWN,
			       HUBBLE_DIR_INGRESS, __LINE__);
	ret = dp_parse_l4(skb, &p);
	if (ret)
		return dp_drop(skb, &cfg, ret, dst->ep_id, &peers, HUBBLE_CT_UNKNOWN,
			       HUBBLE_DIR_INGRESS, __LINE__);

	now = bpf_ktime_get_boot_ns();
	ct_state = dp_ct_lookup(&p, &cfg, now, &report, &info);
	dp_emit_trace(skb, &cfg, HUBBLE_TRACE_FROM_STACK, dst->ep_id, &peers, ct_state, report,
		      skb->ifindex);
	if (ct_state == HUBBLE_CT_REPLY) {
		ret = dp_lb4_rev_nat(skb, &cfg, &p, &peers, info.rev_nat_id, &rnat_flags);
		if (ret)
			return dp_drop(skb, &cfg, ret, dst->ep_id, &peers, ct_state,
				       HUBBLE_DIR_UNKNOWN, __LINE__);
	}

	if (ct_state == HUBBLE_CT_NEW) {
		ret = admit_ingress(skb, &cfg, dst, &peers, &p, now, skb->ifindex, 0);
		if (ret != TC_ACT_UNSPEC)
			return ret;
	}

	dp_emit_trace(skb, &cfg, HUBBLE_TRACE_TO_LXC, dst->ep_id, &peers, ct_state, report,
		      skb->ifindex);
	return TC_ACT_OK;
}

SEC("classifier")
int from_overlay(struct __sk_buff *skb)
{
	struct dp_config cfg;
	struct dp_pkt p = {};
	struct dp_peers peers = {};
	struct endpoint_value *dst;
	struct dp_ct_info info;
	__u64 now;
	__u32 from_node = 0;
	__u16 eth_proto;
	__u8 ct_state, report, rnat_flags;
	int ret;

	dp_load_config(&cfg);
	/* Who is talking: the sender's node put its identity in the VNI. */
	ret = dp_overlay_identity(skb, &peers.src_identity, &from_node);
	if (ret)
		return dp_drop(skb, &cfg, ret, 0, &peers, HUBBLE_CT_UNKNOWN, HUBBLE_DIR_INGRESS,
			       __LINE__);

	eth_proto = dp_eth_proto(skb);
	if (eth_proto == ETH_P_ARP)
		return TC_ACT_OK; /* pods resolve their gateway locally: not ours */
	if (eth_proto != ETH_P_IP)
		return dp_drop(skb, &cfg, HUBBLE_DROP_UNSUPPORTED_L3_PROTOCOL, 0, &peers,
			       HUBBLE_CT_UNKNOWN, HUBBLE_DIR_INGRESS, __LINE__);

	ret = dp_parse_ipv4(skb, &p);
	if (ret == HUBBLE_DROP_INVALID_PACKET)
		return dp_drop(skb, &cfg, ret, 0, &peers, HUBBLE_CT_UNKNOWN, HUBBLE_DIR_INGRESS,
			       __LINE__);

	dst = dp_lookup_endpoint(p.daddr);
	if (!dst) {
		/* Not for a pod of this node: the stack routes it, except the
		 * reply of a NodePort connection this node translated for an
		 * external client, which leaves from the frontend. */
		if (ret || dp_parse_l4(skb, &p))
			return TC_ACT_OK;
		now = bpf_ktime_get_boot_ns();
		ct_state = dp_ct_lookup(&p, &cfg, now, &report, &info);
		if (ct_state != HUBBLE_CT_REPLY || !info.rev_nat_id)
			return TC_ACT_OK;
		peers.dst_identity = dp_resolve_identity(p.daddr, &dst);
		dp_emit_trace(skb, &cfg, HUBBLE_TRACE_FROM_OVERLAY, 0, &peers, ct_state, report,
			      skb->ifindex);
		ret = dp_lb4_rev_nat(skb, &cfg, &p, &peers, info.rev_nat_id, &rnat_flags);
		if (ret)
			return dp_drop(skb, &cfg, ret, 0, &peers, ct_state, HUBBLE_DIR_UNKNOWN,
				       __LINE__);
		if (rnat_flags & DP_LB_RNAT_F_NODEPORT) {
			dp_emit_trace(skb, &cfg, HUBBLE_TRACE_TO_NETWORK, 0, &peers, ct_state,
				      report, 0);
			return dp_lb_fib_redirect(skb, &p);
		}
		dp_emit_trace(skb, &cfg, HUBBLE_TRACE_TO_STACK, 0, &peers, ct_state, report,
			      skb->ifindex);
		return TC_ACT_OK;
	}
	peers.dst_identity = dst->identity;
	peers.dst_ep = dst->ep_id;

	if (ret)
		return dp_drop(skb, &cfg, ret, dst->ep_id, &peers, HUBBLE_CT_UNKNOWN,
			       HUBBLE_DIR_INGRESS, __LINE__);
	ret = dp_parse_l4(skb, &p);
	if (ret)
		return dp_drop(skb, &cfg, ret, dst->ep_id, &peers, HUBBLE_CT_UNKNOWN,
			       HUBBLE_DIR_INGRESS, __LINE__);

	now = bpf_ktime_get_boot_ns();
	ct_state = dp_ct_lookup(&p, &cfg, now, &report, &info);
	dp_emit_trace(skb, &cfg, HUBBLE_TRACE_FROM_OVERLAY, dst->ep_id, &peers, ct_state, report,
		      skb->ifindex);
	if (ct_state == HUBBLE_CT_REPLY) {
		ret = dp_lb4_rev_nat(skb, &cfg, &p, &peers, info.rev_nat_id, &rnat_flags);
		if (ret)
			return dp_drop(skb, &cfg, ret, dst->ep_id, &peers, ct_state,
				       HUBBLE_DIR_UNKNOWN, __LINE__);
	}

	if (ct_state == HUBBLE_CT_NEW) {
		ret = admit_ingress(skb, &cfg, dst, &peers, &p, now, dst->ifindex, from_node);
		if (ret != TC_ACT_UNSPEC)
			return ret;
	}

	return deliver_local(skb, &cfg, dst, dst->ep_id, &peers, ct_state, report);
}

SEC("classifier")
int from_netdev(struct __sk_buff *skb)
{
	struct dp_config cfg;
	struct dp_pkt p = {};
	struct dp_peers peers = {};
	struct endpoint_value *src, *dst;
	struct dp_verdict v;
	struct dp_lb lb = {};
	struct dp_ct_info info;
	__u64 now;
	__u32 tunnel_ep = 0;
	__u8 ct_state, report;
	int ret;

	dp_load_config(&cfg);
	/* Everything but a NodePort frontend is the node's own business
	 * (including the overlay's own UDP): untouched, untraced. */
	if (dp_eth_proto(skb) != ETH_P_IP || dp_parse_ipv4(skb, &p) || dp_parse_l4(skb, &p))
		return TC_ACT_OK;
	now = bpf_ktime_get_boot_ns();
	ret = dp_lb4_select(&p, now, &lb, 1);
	if (!lb.is_service)
		return TC_ACT_OK;
	peers.src_identity = dp_resolve_identity(p.saddr, &src);
	if (ret)
		return dp_drop(skb, &cfg, ret, 0, &peers, HUBBLE_CT_NEW, HUBBLE_DIR_INGRESS,
			       __LINE__);
	p.daddr = lb.backend_ip;
	p.dport = lb.backend_port;
	p.policy_port = lb.backend_port;
	peers.dst_identity = dp_resolve_peer(p.daddr, &dst, &tunnel_ep);
	peers.dst_ep = dst ? dst->ep_id : 0;

	ct_state = dp_ct_lookup(&p, &cfg, now, &report, &info);
	dp_emit_trace(skb, &cfg, HUBBLE_TRACE_FROM_NETWORK, peers.dst_ep, &peers, ct_state,
		      report, skb->ifindex);
	ret = dp_lb4_dnat(skb, &p, &lb);
	if (ret)
		return dp_drop(skb, &cfg, ret, peers.dst_ep, &peers, ct_state, HUBBLE_DIR_UNKNOWN,
			       __LINE__);

	if (ct_state == HUBBLE_CT_NEW) {
		if (dst && (dst->flags & DP_EP_F_ENFORCE_INGRESS)) {
			ret = dp_policy_decide(dst, HUBBLE_DIR_INGRESS, peers.src_identity, &p, &v);
			dp_emit_verdict(skb, dst->ep_id, dst->identity, peers.src_identity, &p, &v,
					dst->ifindex);
			if (ret)
				return dp_drop_rule(skb, &cfg, ret, dst->ep_id, &peers, HUBBLE_CT_NEW,
					       HUBBLE_DIR_INGRESS, __LINE__, v.rule);
		}
		ret = dp_ct_create(&p, &peers, now, lb.rev_nat_id, 0);
		if (ret)
			return dp_drop(skb, &cfg, ret, peers.dst_ep, &peers, HUBBLE_CT_NEW,
				       HUBBLE_DIR_INGRESS, __LINE__);
	}

	if (dst)
		return deliver_local(skb, &cfg, dst, dst->ep_id, &peers, ct_state, report);
	/* A backend on another node: through the overlay, as the client's
	 * identity (world for an external client); its node polices ingress
	 * and sends the replies back here (ct_value.tunnel_ep). */
	if (tunnel_ep && cfg.tunnel_ifindex) {
		ret = dp_overlay_encap(skb, tunnel_ep, peers.src_identity);
		if (ret)
			return dp_drop(skb, &cfg, ret, 0, &peers, ct_state, HUBBLE_DIR_UNKNOWN,
				       __LINE__);
		dp_emit_trace(skb, &cfg, HUBBLE_TRACE_TO_OVERLAY, 0, &peers, ct_state, report,
			      cfg.tunnel_ifindex);
		return bpf_redirect(cfg.tunnel_ifindex, 0);
	}
	dp_emit_trace(skb, &cfg, HUBBLE_TRACE_TO_STACK, 0, &peers, ct_state, report,
		      skb->ifindex);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
