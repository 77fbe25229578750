//! What the flow ring holds ([`Event`]): a decoded flow or a loss record.
//! Its own module so that the observer (which stores and reads events) and
//! `served` (which encodes a stored flow once) both use it without
//! depending on each other.

use proto::flow::{Flow, LostEvent};
use proto::wkt::Timestamp;

/// What the ring holds.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "flows dominate; a lost record wasting the rest of a slot is rare"
)]
pub enum Event {
    /// A decoded flow.
    Flow(Flow),
    /// Events lost before they reached the ring (kernel ring buffer, event
    /// queue). They skip filters and are delivered to every reader.
    Lost {
        /// The loss.
        lost: LostEvent,
        /// When it was recorded.
        time: Timestamp,
    },
}

/// An empty flow: what a fresh ring slot starts as before the decoder
/// writes into it.
impl Default for Event {
    fn default() -> Self {
        Event::Flow(Flow::default())
    }
}

impl Event {
    /// The flow to decode into: this one, or a new empty one if the slot
    /// held a loss record.
    pub(crate) fn flow_mut(&mut self) -> &mut Flow {
        if let Event::Lost { .. } = self {
            *self = Event::default();
        }
        match self {
            Event::Flow(f) => f,
            Event::Lost { .. } => unreachable!("replaced by a flow above"),
        }
    }

    pub(crate) fn time(&self) -> Option<Timestamp> {
        match self {
            Event::Flow(f) => f.time,
            Event::Lost { time, .. } => Some(*time),
        }
    }
}
