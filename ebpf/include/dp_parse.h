/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dp_parse.h - packet parsing for the datapath programs.
 *
 * Everything is read with bpf_skb_load_bytes (no direct packet access), so
 * a helper that rewrites the packet (MAC rewrite, ARP reply) never leaves a
 * stale packet pointer behind, and a header cut short by the end of the
 * frame is simply a failed load. Results are HUBBLE_DROP_* codes (0 = ok),
 * which the callers turn into drop events.
 */
#ifndef DP_PARSE_H
#define DP_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "hubble_events.h"

#define DP_ETH_HLEN 14
#define DP_IP_MF 0x2000
#define DP_IP_OFFMASK 0x1fff

/* TCP flag bits as in byte 13 of the TCP header. */
#define DP_TCP_FIN 0x01
#define DP_TCP_SYN 0x02
#define DP_TCP_RST 0x04
#define DP_TCP_PSH 0x08
#define DP_TCP_ACK 0x10

#define DP_ICMP_ECHOREPLY 0
#define DP_ICMP_ECHO 8

/* ARP over Ethernet/IPv4 (not from <linux/if_arp.h>: it pulls glibc). */
#define DP_ARPOP_REQUEST 1
#define DP_ARPOP_REPLY 2
struct dp_arp {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__be32 spa;
	__u8 tha[6];
	__be32 tpa;
} __attribute__((packed));
_Static_assert(sizeof(struct dp_arp) == 28, "arp header");

/* What the programs need from an IPv4 packet. */
struct dp_pkt {
	__u32 saddr;       /* network order */
	__u32 daddr;       /* network order */
	__u16 sport;       /* conntrack tuple ports, host order (see dp_types.h for ICMP) */
	__u16 dport;
	__u16 policy_port; /* port the policy matches on: L4 dport, ICMP type */
	__u8 proto;
	__u8 tcp_flags;    /* DP_TCP_* bits, 0 for non-TCP */
	__u32 l4_off;      /* offset of the L4 header in the frame */
	__u32 len;         /* skb->len */
};

/* The EtherType of the frame, host order; 0 if it cannot be read. */
static __always_inline __u16 dp_eth_proto(struct __sk_buff *skb)
{
	__be16 proto;

	if (bpf_skb_load_bytes(skb, 12, &proto, sizeof(proto)) < 0)
		return 0;
	return bpf_ntohs(proto);
}

/* Reads the IPv4 header: addresses, protocol, L4 offset. Fragments are not
 * supported (a non-first fragment has no ports to track or police). */
static __always_inline int dp_parse_ipv4(struct __sk_buff *skb, struct dp_pkt *p)
{
	struct iphdr ip;
	__u32 ihl;

	if (bpf_skb_load_bytes(skb, DP_ETH_HLEN, &ip, sizeof(ip)) < 0)
		return HUBBLE_DROP_INVALID_PACKET;
	ihl = ip.ihl;
	if (ip.version != 4 || ihl < 5)
		return HUBBLE_DROP_INVALID_PACKET;
	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->proto = ip.protocol;
	p->l4_off = DP_ETH_HLEN + ihl * 4;
	p->len = skb->len;
	if (bpf_ntohs(ip.frag_off) & (DP_IP_MF | DP_IP_OFFMASK))
		return HUBBLE_DROP_IP_FRAGMENTATION_NOT_SUPPORTED;
	return 0;
}

/* Reads the L4 header of a parsed IPv4 packet: ports, TCP flags, ICMP type.
 * A header cut short is CT_TRUNCATED_OR_INVALID_HEADER (as Cilium's
 * conntrack reports it); a protocol other than TCP, UDP, SCTP or ICMP is
 * UNKNOWN_L4_PROTOCOL. */
static __always_inline int dp_parse_l4(struct __sk_buff *skb, struct dp_pkt *p)
{
	__u32 off = p->l4_off;

	/* ihl is 4 bits, so off <= 14 + 60; say so for the verifier. */
	if (off > DP_ETH_HLEN + 60)
		return HUBBLE_DROP_INVALID_PACKET;

	switch (p->proto) {
	case IPPROTO_TCP: {
		__u8 h[20]; /* a TCP header is at least 20 bytes */

		if (bpf_skb_load_bytes(skb, off, h, sizeof(h)) < 0)
			return HUBBLE_DROP_CT_TRUNCATED_OR_INVALID_HEADER;
		if ((h[12] >> 4) < 5)
			return HUBBLE_DROP_CT_TRUNCATED_OR_INVALID_HEADER;
		p->sport = ((__u16)h[0] << 8) | h[1];
		p->dport = ((__u16)h[2] << 8) | h[3];
		p->tcp_flags = h[13];
		p->policy_port = p->dport;
		return 0;
	}
	case IPPROTO_UDP:
	case IPPROTO_SCTP: {
		__u8 h[8]; /* UDP header; the ports of the 12-byte SCTP common header */

		if (bpf_skb_load_bytes(skb, off, h, p->proto == IPPROTO_UDP ? 8 : 4) < 0)
			return HUBBLE_DROP_CT_TRUNCATED_OR_INVALID_HEADER;
		p->sport = ((__u16)h[0] << 8) | h[1];
		p->dport = ((__u16)h[2] << 8) | h[3];
		p->policy_port = p->dport;
		return 0;
	}
	case IPPROTO_ICMP: {
		__u8 h[8]; /* type, code, checksum, identifier, sequence */
		__u16 id;

		if (bpf_skb_load_bytes(skb, off, h, sizeof(h)) < 0)
			return HUBBLE_DROP_CT_TRUNCATED_OR_INVALID_HEADER;
		id = ((__u16)h[4] << 8) | h[5];
		p->policy_port = h[0];
		if (h[0] == DP_ICMP_ECHO) {
			p->sport = id;
			p->dport = 0;
		} else if (h[0] == DP_ICMP_ECHOREPLY) {
			p->sport = 0;
			p->dport = id;
		} else {
			/* Other types: one pseudo-flow per type between two hosts. */
			p->sport = 0;
			p->dport = (__u16)h[0] << 8;
		}
		return 0;
	}
	default:
		return HUBBLE_DROP_UNKNOWN_L4_PROTOCOL;
	}
}

#endif /* DP_PARSE_H */
