//! Defaults the filter semantics depend on, each with the reason it has
//! this value. They mirror upstream Hubble so that the same FlowFilter selects
//! the same flows here as on a Cilium agent.

/// Namespace assumed for a pod or service filter without a `ns/` part:
/// Hubble's `ParseNamespaceName` defaults to Kubernetes' `default` namespace.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Cluster assumed for a flow whose `node_name` has no `cluster/` part:
/// Cilium's default `--cluster-name` is `default`, and Hubble prefixes bare
/// node names with it before matching `node_name` patterns.
pub const DEFAULT_CLUSTER_NAME: &str = "default";

/// Monitor message type of L7 (access log) events, `MessageTypeAccessLog`:
/// HTTP filters are rejected when `event_type` is set without it.
pub const EVENT_TYPE_L7: i32 = 129;

/// Label source that matches every source in a selector key (`any:app`);
/// a selector key without a source gets it.
pub const LABEL_SOURCE_ANY: &str = "any";

/// Label source of a flow label without one (`app=x`), Cilium's
/// `LabelSourceUnspec`.
pub const LABEL_SOURCE_UNSPEC: &str = "unspec";

/// Label source of Cilium's reserved labels (`reserved:world`, `$host`).
pub const LABEL_SOURCE_RESERVED: &str = "reserved";

/// Label source of CIDR labels, matched by prefix containment rather than
/// by key equality.
pub const LABEL_SOURCE_CIDR: &str = "cidr";

/// Most bytes the filters of one request may take, encoded (allow and deny
/// lists together). A Hubble CLI request with dozens of pods, labels and
/// patterns is a few KiB; without a bound one request carrying a 3 MB
/// pattern cost an exporter ~300 MB to compile. Over it the server answers
/// `RESOURCE_EXHAUSTED` naming this limit.
pub const MAX_FILTER_BYTES: usize = 64 * 1024;

/// How much of an offending value an error message quotes: enough to
/// recognise it, never so much that the message itself becomes a problem
/// (gRPC clients reject status messages over their metadata limit, 8 KiB
/// for grpcio).
pub const ERROR_VALUE_PREFIX: usize = 64;
