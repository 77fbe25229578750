//! The flow ring: a bounded, overwrite-oldest buffer of decoded events with
//! one non-blocking writer and any number of readers.
//!
//! Like Hubble's `container.Ring`, the capacity is `2^n − 1` and the backing
//! array has `2^n` slots: one slot is always the writer's. Every slot holds the
//! sequence number it was written with, so a reader that was lapped notices it
//! (the slot holds a newer sequence) and learns exactly how many events it lost:
//! `oldest_readable − its position`. Readers never take a lock the writer
//! waits on: slots are `ArcSwapOption`s and the write position is an atomic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

/// Largest capacity accepted (2^20 − 1 = 1,048,575 flows).
pub const MAX_CAPACITY: u64 = (1 << 20) - 1;

/// An event stored in the ring together with its sequence number.
#[derive(Debug)]
pub struct Slot<T> {
    /// Position of this event in the stream of everything ever written.
    pub seq: u64,
    /// The stored event.
    pub value: T,
}

impl<T: Default> Slot<T> {
    /// An empty slot no position refers to.
    fn fresh() -> Self {
        Slot {
            seq: u64::MAX,
            value: T::default(),
        }
    }
}

/// The slot a ring's writer fills next ([`Ring::push_with_spare`]): the
/// one its previous write evicted.
#[derive(Debug)]
pub struct Spare<T>(Option<Arc<Slot<T>>>);

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Spare(None)
    }
}

/// What a reader finds at a position.
#[derive(Debug)]
pub enum Read<T> {
    /// The event at that position.
    Event(Arc<Slot<T>>),
    /// Nothing has been written there yet.
    NotYet,
    /// The writer has overwritten that position; `oldest` is the oldest
    /// position still readable.
    Overwritten { oldest: u64 },
}

/// Errors for an invalid ring capacity.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    /// The capacity is not of the form 2^n − 1 within the allowed range.
    #[error(
        "invalid ring capacity {0}: must be 2^n-1 between 1 and {MAX_CAPACITY} (e.g. 4095, 8191, 65535)"
    )]
    InvalidCapacity(u64),
}

/// The ring itself.
pub struct Ring<T> {
    slots: Box<[ArcSwapOption<Slot<T>>]>,
    mask: u64,
    capacity: u64,
    /// Sequence number of the next event to be written (= events written).
    write: AtomicU64,
    notify: Notify,
}

impl<T> std::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity)
            .field("written", &self.written())
            .finish()
    }
}

impl<T> Ring<T> {
    /// A ring holding up to `capacity` events; `capacity` must be 2^n − 1.
    pub fn new(capacity: u64) -> Result<Self, RingError> {
        if capacity == 0 || capacity > MAX_CAPACITY || (capacity + 1) & capacity != 0 {
            return Err(RingError::InvalidCapacity(capacity));
        }
        let n = capacity + 1;
        let slots = (0..n).map(|_| ArcSwapOption::empty()).collect();
        Ok(Ring {
            slots,
            mask: n - 1,
            capacity,
            write: AtomicU64::new(0),
            notify: Notify::new(),
        })
    }

    /// The maximum number of events held.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Events written since creation.
    pub fn written(&self) -> u64 {
        self.write.load(Ordering::Acquire)
    }

    /// Events currently held.
    pub fn len(&self) -> u64 {
        self.written().min(self.capacity)
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.written() == 0
    }

    /// The oldest readable position.
    pub fn oldest(&self) -> u64 {
        self.written().saturating_sub(self.capacity)
    }

    /// Appends one event, overwriting the oldest when full, and wakes
    /// followers. Never blocks on readers.
    pub fn push(&self, value: T) {
        self.push_quiet(value);
        self.notify.notify_waiters();
    }

    /// Appends without waking followers; call [`Ring::wake`] after a batch.
    pub fn push_quiet(&self, value: T) {
        // Single writer by contract (the ingest task), so a load/store pair
        // on `write` suffices; readers only trust a slot whose seq matches.
        let seq = self.write.load(Ordering::Relaxed);
        self.slots[(seq & self.mask) as usize].store(Some(Arc::new(Slot { seq, value })));
        self.write.store(seq + 1, Ordering::Release);
    }

    /// Appends an event built in place, without waking followers (call
    /// [`Ring::wake`] after a batch), with one atomic swap: `fill`
    /// writes into `spare` (a slot evicted by an earlier call, its
    /// allocations reused; a fresh one when a reader still holds it or
    /// there is none yet), which is then swapped into the ring; the slot
    /// it evicts (a position older than [`Ring::oldest`]) becomes the next
    /// spare. For the single writer, which keeps its `spare` between calls
    /// (only ever with this ring). When `fill` fails nothing is published.
    pub fn push_with_spare<E>(
        &self,
        spare: &mut Spare<T>,
        fill: impl FnOnce(&mut T) -> Result<(), E>,
    ) -> Result<(), E>
    where
        T: Default,
    {
        let seq = self.write.load(Ordering::Relaxed);
        let slot = spare.0.get_or_insert_with(|| Arc::new(Slot::fresh()));
        if Arc::get_mut(slot).is_none() {
            // A reader still holds the evicted slot: it keeps it.
            *slot = Arc::new(Slot::fresh());
        }
        let s = Arc::get_mut(slot).expect("checked above");
        fill(&mut s.value)?;
        s.seq = seq;
        let full = spare.0.take().expect("filled above");
        // The evicted slot held position `seq − 2^n` (or nothing): out of
        // the readable range since the previous write.
        spare.0 = self.slots[(seq & self.mask) as usize].swap(Some(full));
        self.write.store(seq + 1, Ordering::Release);
        Ok(())
    }

    /// Wakes all followers waiting for new events.
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// Reads the event at `seq`.
    pub fn read(&self, seq: u64) -> Read<T> {
        let written = self.written();
        if seq >= written {
            return Read::NotYet;
        }
        let oldest = written.saturating_sub(self.capacity);
        if seq < oldest {
            return Read::Overwritten { oldest };
        }
        match self.slots[(seq & self.mask) as usize].load_full() {
            Some(slot) if slot.seq == seq => Read::Event(slot),
            Some(slot) if slot.seq > seq => Read::Overwritten {
                oldest: self.oldest().max(seq + 1),
            },
            // The writer advanced `write` only after storing, so this cannot
            // happen; treat it as "not yet" rather than panicking.
            _ => Read::NotYet,
        }
    }

    /// Waits until an event at `seq` exists (or was overwritten), or until
    /// the next [`Ring::wake`].
    pub async fn wait_for(&self, seq: u64) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.written() > seq {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(1, true)]
    #[case(3, true)]
    #[case(4095, true)]
    #[case(1_048_575, true)]
    #[case(0, false)]
    #[case(4096, false)]
    #[case(5, false)]
    #[case(2_097_151, false)]
    fn capacity_rule(#[case] cap: u64, #[case] ok: bool) {
        assert_eq!(Ring::<u32>::new(cap).is_ok(), ok);
    }

    #[test]
    fn holds_last_capacity_events() {
        let r = Ring::new(7).unwrap();
        for i in 0..20u64 {
            r.push(i);
        }
        assert_eq!(r.len(), 7);
        assert_eq!(r.oldest(), 13);
        for s in 13..20 {
            match r.read(s) {
                Read::Event(e) => assert_eq!(e.value, s),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(matches!(r.read(12), Read::Overwritten { oldest: 13 }));
        assert!(matches!(r.read(20), Read::NotYet));
    }

    #[test]
    fn lapped_reader_learns_exact_loss() {
        let r = Ring::new(3).unwrap();
        r.push(0u32);
        let reader = 0;
        for i in 1..10 {
            r.push(i);
        }
        match r.read(reader) {
            Read::Overwritten { oldest } => assert_eq!(oldest - reader, 7),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn pushes_with_a_spare_reuse_evicted_slots_and_keep_the_read_rules() {
        let r = Ring::<Vec<u64>>::new(3).unwrap();
        let mut spare = Spare::default();
        let held = (0..10u64)
            .map(|i| {
                r.push_with_spare(&mut spare, |v| {
                    v.clear();
                    v.push(i);
                    Ok::<(), ()>(())
                })
                .unwrap();
                match r.read(i) {
                    Read::Event(e) => {
                        assert_eq!(e.value, [i]);
                        e
                    }
                    other => panic!("unexpected {other:?}"),
                }
            })
            .collect::<Vec<_>>();
        // Slots still held by readers are never written over.
        for (i, e) in held.iter().enumerate() {
            assert_eq!(e.value, [i as u64]);
        }
        drop(held);
        assert!(r.push_with_spare(&mut spare, |_| Err(())).is_err());
        assert_eq!(r.written(), 10);
        assert!(matches!(r.read(6), Read::Overwritten { oldest: 7 }));
        for i in 10..20u64 {
            r.push_with_spare(&mut spare, |v| {
                v.clear();
                v.push(i);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        for s in 17..20 {
            match r.read(s) {
                Read::Event(e) => assert_eq!(e.value, [s]),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn follower_is_woken() {
        let r = Arc::new(Ring::new(15).unwrap());
        let r2 = r.clone();
        let h = tokio::spawn(async move {
            r2.wait_for(0).await;
            match r2.read(0) {
                Read::Event(e) => e.value,
                _ => u32::MAX,
            }
        });
        tokio::task::yield_now().await;
        r.push(42u32);
        assert_eq!(h.await.unwrap(), 42);
    }
}
