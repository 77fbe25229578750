//! The state of a peer connection, apart from the pool that drives it and
//! the metrics that report it: [`pool`](crate::pool) and
//! [`metrics`](crate::metrics) both depend on this module, and `pool`
//! depends on `metrics`, never the other way round.

/// A peer connection's state, named as gRPC's connectivity states (the
/// `status` label of `hubble_relay_pool_peer_connection_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Known but not dialled yet.
    Idle,
    /// Dialling.
    Connecting,
    /// Connected: requests use it.
    Ready,
    /// The last dial or probe failed; waiting for the next dial.
    TransientFailure,
    /// Removed or the relay is stopping.
    Shutdown,
    /// The peer cannot be dialled at all (an address that is no URI).
    NilConnection,
}

impl ConnState {
    /// Every state, in metric order.
    pub const ALL: [ConnState; 6] = [
        ConnState::Idle,
        ConnState::Connecting,
        ConnState::Ready,
        ConnState::TransientFailure,
        ConnState::Shutdown,
        ConnState::NilConnection,
    ];

    /// The gRPC name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Idle => "IDLE",
            ConnState::Connecting => "CONNECTING",
            ConnState::Ready => "READY",
            ConnState::TransientFailure => "TRANSIENT_FAILURE",
            ConnState::Shutdown => "SHUTDOWN",
            ConnState::NilConnection => "NIL_CONNECTION",
        }
    }
}
