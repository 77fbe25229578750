//! What the flow ring holds ([`Event`]): a stored flow or a loss record.
//! Its own module so that the observer (which stores and reads events) and
//! `served` (which writes a stored flow) both use it without depending on
//! each other.

use proto::flow::LostEvent;
use proto::wkt::Timestamp;

use crate::stored::StoredFlow;

/// What the ring holds.
#[derive(Debug)]
pub enum Event {
    /// A flow, in its compact stored form ([`crate::stored`]).
    Flow(StoredFlow),
    /// Events lost before they reached the ring (kernel ring buffer, event
    /// queue). They skip filters and are delivered to every reader.
    Lost {
        /// The loss (boxed: rare, and the slot stays small).
        lost: Box<LostEvent>,
        /// When it was recorded.
        time: Timestamp,
    },
}

/// An empty flow: what a fresh ring slot starts as before the ingest
/// writes into it.
impl Default for Event {
    fn default() -> Self {
        Event::Flow(StoredFlow::default())
    }
}

impl Event {
    /// The stored flow to write into: this one (its buffer reused), or a
    /// new empty one if the slot held a loss record.
    pub(crate) fn stored_mut(&mut self) -> &mut StoredFlow {
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
            Event::Flow(f) => f.time(),
            Event::Lost { time, .. } => Some(*time),
        }
    }
}
