//! The series of one Hubble metric family: its label set (Hubble's fixed
//! labels with the context labels before or after them) and, for a family
//! with context labels, a table that bounds the series in number
//! ([`defaults::METRIC_SERIES_MAX`], then an `other` series) and in age
//! ([`defaults::METRIC_SERIES_TTL`]).

use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rustc_hash::FxHashMap;

use crate::defaults;

/// Context labels (name, value), in emission order.
pub type Ctx = Vec<(&'static str, String)>;

/// A series' labels: `before` (the context labels of `hubble_drop_total`,
/// which Hubble puts first), Hubble's fixed labels, then `after` (the
/// context labels of every other family, and this exporter's extras).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Labels<F> {
    /// Labels before the fixed ones.
    pub before: Ctx,
    /// Hubble's fixed labels of the family.
    pub fixed: F,
    /// Labels after the fixed ones.
    pub after: Ctx,
}

impl<F: EncodeLabelSet> EncodeLabelSet for Labels<F> {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.before.encode(encoder)?;
        self.fixed.encode(encoder)?;
        self.after.encode(encoder)
    }
}

impl<F> Labels<F> {
    /// Fixed labels alone.
    pub fn fixed(fixed: F) -> Self {
        Labels {
            before: Vec::new(),
            fixed,
            after: Vec::new(),
        }
    }
}

/// One Hubble family: the registered [`Family`] and the table of its
/// context-labelled series.
#[derive(Debug)]
pub struct HubbleFamily<F: Clone + Hash + Eq> {
    /// The registered family.
    pub family: Family<Labels<F>, Counter>,
    /// The family's served name (`hubble_drop_total`), for the overflow and
    /// expiry counters.
    pub name: &'static str,
    /// Context labels at the front of `after` that are not context (the
    /// flows-to-world `port`): an overflow keeps their values.
    pub keep_after: usize,
    table: Mutex<Table<F>>,
}

#[derive(Debug)]
struct Table<F> {
    live: FxHashMap<Labels<F>, (Counter, Instant)>,
    last_sweep: Option<Instant>,
}

/// What a count did to the table, for the exporter's own counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CountOutcome {
    /// The series was new and the table full: counted under `other`.
    pub overflowed: bool,
    /// Series removed for age by a sweep this count triggered.
    pub expired: u64,
}

impl<F: Clone + Hash + Eq> HubbleFamily<F> {
    /// A family with no series.
    pub fn new(name: &'static str, keep_after: usize) -> Self {
        HubbleFamily {
            family: Family::default(),
            name,
            keep_after,
            table: Mutex::new(Table {
                live: FxHashMap::default(),
                last_sweep: None,
            }),
        }
    }

    /// Counts one flow in the series `labels` (with context labels) at
    /// `now`: bounded in number, and series unseen for the TTL removed.
    pub fn count(&self, labels: Labels<F>, now: Instant) -> CountOutcome {
        let mut out = CountOutcome::default();
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        out.expired = self.sweep_locked(&mut t, now);
        if let Some((c, seen)) = t.live.get_mut(&labels) {
            c.inc();
            *seen = now;
            return out;
        }
        let labels = if t.live.len() >= defaults::METRIC_SERIES_MAX {
            out.overflowed = true;
            self.other(labels)
        } else {
            labels
        };
        // The `other` series may exist already; it is not capped (it has
        // no more combinations than the fixed labels).
        let entry = t
            .live
            .entry(labels)
            .or_insert_with_key(|l| (self.family.get_or_create_owned(l), now));
        entry.0.inc();
        entry.1 = now;
        out
    }

    /// Removes series unseen for the TTL, if a sweep is due at `now`;
    /// returns how many.
    pub fn sweep(&self, now: Instant) -> u64 {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        self.sweep_locked(&mut t, now)
    }

    /// Series in the table.
    pub fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sweep_locked(&self, t: &mut Table<F>, now: Instant) -> u64 {
        match t.last_sweep {
            None => {
                t.last_sweep = Some(now);
                return 0;
            }
            Some(last) if now.saturating_duration_since(last) < defaults::METRIC_SERIES_SWEEP => {
                return 0;
            }
            Some(_) => {}
        }
        t.last_sweep = Some(now);
        let mut gone = Vec::new();
        t.live.retain(|l, (_, seen)| {
            let keep = now.saturating_duration_since(*seen) < defaults::METRIC_SERIES_TTL;
            if !keep {
                gone.push(l.clone());
            }
            keep
        });
        for l in &gone {
            self.family.remove(l);
        }
        gone.len() as u64
    }

    fn other(&self, mut l: Labels<F>) -> Labels<F> {
        for (_, v) in l.before.iter_mut() {
            *v = "other".into();
        }
        for (_, v) in l.after.iter_mut().skip(self.keep_after) {
            *v = "other".into();
        }
        l
    }
}
