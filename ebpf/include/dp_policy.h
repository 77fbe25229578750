/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dp_policy.h - the policy decision for a new connection.
 *
 * Cilium's semantics: an endpoint whose `enforced` flag is set for a
 * direction is default-deny there (only matching ALLOW entries let traffic
 * through); without the flag everything is allowed and no verdict is
 * reported. An explicit DENY entry that matches always wins over allows.
 *
 * Two longest-prefix lookups in the `policy` LPM trie (key: dp_types.h),
 * {ep, dir, peer identity, proto, port} and the same with identity 0 (any
 * peer); each answers with its most specific entry, L3-only entries being
 * the least specific. The agent writes every entry that lies inside a DENY
 * of the same identity as a DENY, so an answer is a deny whenever any deny
 * of that identity matches. The decision, first that applies:
 *   a DENY answer (ranked as below) -> denied;
 *   else the ALLOW/AUDIT answer ranked first: peer L4 entry (L3_L4),
 *   any-peer L4 entry (L4_ONLY), peer L3-only entry (L3_ONLY), any-peer
 *   L3-only entry (ALL) -> allowed (or audited);
 *   else no entry -> denied by default.
 */
#ifndef DP_POLICY_H
#define DP_POLICY_H

#include <bpf/bpf_endian.h>

#include "dp_maps.h"
#include "dp_events.h"

/* Rank of an answer (lower is more specific) and its Hubble match type:
 * `peer` = from the peer identity's lookup. */
static __always_inline int dp_policy_rank(const struct policy_value *v, int peer, __u8 *match)
{
	if (v->flags & DP_POLICY_F_L4) {
		*match = peer ? HUBBLE_POLICY_MATCH_L3_L4 : HUBBLE_POLICY_MATCH_L4_ONLY;
		return peer ? 0 : 1;
	}
	*match = peer ? HUBBLE_POLICY_MATCH_L3_ONLY : HUBBLE_POLICY_MATCH_ALL;
	return peer ? 2 : 3;
}

/* Decides policy for `ep` in `direction` against the peer `remote_identity`.
 * Returns 0 when the packet may pass (allowed, or denied but audited) and
 * the drop code otherwise; `out` describes the decision for the verdict
 * event. Call only for endpoints enforcing that direction. */
static __always_inline int dp_policy_decide(const struct endpoint_value *ep, __u8 direction,
					    __u32 remote_identity, const struct dp_pkt *p,
					    struct dp_verdict *out)
{
	struct policy_key k = {
		.prefixlen = DP_POLICY_PREFIX_FULL,
		.ep_id = ep->ep_id,
		.direction = direction,
		.identity = remote_identity,
		.proto = p->proto,
		.dport = bpf_htons(p->policy_port),
	};
	const struct policy_value *ans[2];
	__u8 allow_action = 0, allow_match = HUBBLE_POLICY_MATCH_NONE, allow_rank = 4;
	__u8 deny = 0, deny_match = HUBBLE_POLICY_MATCH_NONE, deny_rank = 4;
	__u32 allow_rule = 0, deny_rule = 0;
	int i;

	ans[0] = bpf_map_lookup_elem(&policy, &k);
	k.identity = 0;
	ans[1] = bpf_map_lookup_elem(&policy, &k);

	out->direction = direction;
	out->pad = 0;
	out->rule = 0;
#pragma unroll
	for (i = 0; i < 2; i++) {
		const struct policy_value *v = ans[i];
		__u8 match;
		int rank;

		if (!v)
			continue;
		rank = dp_policy_rank(v, i == 0, &match);
		if (v->action == DP_POLICY_DENY) {
			if (rank < deny_rank) {
				deny = 1;
				deny_rank = rank;
				deny_match = match;
				deny_rule = v->rule;
			}
		} else if ((v->action == DP_POLICY_ALLOW || v->action == DP_POLICY_AUDIT) &&
			   rank < allow_rank) {
			allow_action = v->action;
			allow_rank = rank;
			allow_match = match;
			allow_rule = v->rule;
		}
	}

	if (deny) {
		out->verdict = -HUBBLE_DROP_POLICY_DENY;
		out->match_type = deny_match;
		out->audited = 0;
		out->rule = deny_rule;
	} else if (allow_action == DP_POLICY_ALLOW) {
		out->verdict = 0;
		out->match_type = allow_match;
		out->audited = 0;
		out->rule = allow_rule;
		return 0;
	} else if (allow_action == DP_POLICY_AUDIT) {
		/* A deny rule in audit mode: report what it would do, forward. */
		out->verdict = -HUBBLE_DROP_POLICY_DENY;
		out->match_type = allow_match;
		out->audited = 1;
		out->rule = allow_rule;
		return 0;
	} else {
		out->verdict = -HUBBLE_DROP_POLICY_DENIED;
		out->match_type = HUBBLE_POLICY_MATCH_NONE;
		out->audited = 0;
	}
	if (ep->flags & DP_EP_F_AUDIT) {
		out->audited = 1;
		return 0;
	}
	return -out->verdict;
}

#endif /* DP_POLICY_H */
