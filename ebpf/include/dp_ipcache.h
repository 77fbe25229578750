/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dp_ipcache.h - who is behind an IPv4 address.
 *
 * A local endpoint (the `endpoints` map) carries its own identity; anything
 * else is resolved by longest-prefix match in `ipcache` (the agent writes
 * node addresses as host/remote-node, CIDR rules' prefixes, remote pods);
 * an address nobody claimed is WORLD, as in Cilium. An ipcache entry may
 * also name the node that hosts the prefix (`tunnel_ep`): traffic to it is
 * sent through the overlay (dp_overlay.h).
 */
#ifndef DP_IPCACHE_H
#define DP_IPCACHE_H

#include "dp_maps.h"

static __always_inline struct endpoint_value *dp_lookup_endpoint(__u32 ip4)
{
	struct endpoint_key k = { .ip4 = ip4 };

	return bpf_map_lookup_elem(&endpoints, &k);
}

/* Identity of ip4 by longest-prefix match (WORLD when nobody claimed it);
 * *tunnel_ep = the node hosting it (host order), 0 if none. */
static __always_inline __u32 dp_ipcache_lookup(__u32 ip4, __u32 *tunnel_ep)
{
	struct ipcache_key k = { .prefixlen = 32, .ip4 = ip4 };
	struct ipcache_value *v = bpf_map_lookup_elem(&ipcache, &k);

	*tunnel_ep = v ? v->tunnel_ep : 0;
	return v && v->identity ? v->identity : DP_ID_WORLD;
}

/* Identity of ip4 and where it lives: the local endpoint (*ep), or else the
 * node hosting it (*tunnel_ep, host order, 0 if not behind a tunnel). */
static __always_inline __u32 dp_resolve_peer(__u32 ip4, struct endpoint_value **ep,
					     __u32 *tunnel_ep)
{
	struct endpoint_value *e = dp_lookup_endpoint(ip4);

	*ep = e;
	*tunnel_ep = 0;
	if (e)
		return e->identity;
	return dp_ipcache_lookup(ip4, tunnel_ep);
}

/* Identity of ip4 and, when it is a local endpoint, the endpoint. */
static __always_inline __u32 dp_resolve_identity(__u32 ip4, struct endpoint_value **ep)
{
	__u32 tunnel_ep;

	return dp_resolve_peer(ip4, ep, &tunnel_ep);
}

#endif /* DP_IPCACHE_H */
