//! The store's tasks on its own runtime: the connection session (lease,
//! resync, watch, keep-alive, GC, flushing own keys), its reconnection
//! loop with backoff, the cache writer, and the etcd operations the sync
//! methods hand over (flush, identity allocation, direct writes).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use tokio::time::{MissedTickBehavior, sleep, timeout};

use super::mirror::{Key, Mirror, Value, canonical};
use super::shared::{LOG_TARGET, Own, Shared};
use crate::agent::store::now_unix;
use crate::defaults;
use crate::policy::identity::{CIDR_BASE, IdentityError, LabelSet, MIN_USER, Scope};

/// `op` with the store's operation timeout, both failures as text.
async fn op<T>(
    shared: &Shared,
    what: &'static str,
    f: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    let start = std::time::Instant::now();
    let r = match timeout(shared.cfg.op_timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what}: no answer within {:?}",
            shared.cfg.op_timeout
        )),
    };
    crate::agent::metrics::kvstore_op(what, r.is_ok(), start.elapsed());
    r
}

fn rel<'a>(shared: &Shared, key: &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(key).ok()?.strip_prefix(&shared.prefix)
}

/// Reconnects forever: one session at a time, with backoff between them.
/// The first attempt's outcome goes to `first` (what `connect` waits for).
pub(super) async fn run(shared: Arc<Shared>, first: SyncSender<Result<(), String>>) {
    let mut first = Some(first);
    let (min, max) = shared.cfg.backoff;
    let mut backoff = min;
    loop {
        let Err(e) = session(&shared, &mut first).await;
        let was_connected = {
            let mut i = shared.lock();
            i.client = None;
            let was = i.status.connected;
            if was {
                i.status.outages += 1;
                i.status.connected = false;
                i.status.since_unix = now_unix();
            }
            i.status.last_error = Some(e.clone());
            was
        };
        if let Some(tx) = first.take() {
            let _ = tx.send(Err(e.clone()));
        }
        if was_connected {
            tracing::warn!(target: LOG_TARGET, endpoints = %shared.cfg.endpoints_str(), error = %e, "etcd connection lost; serving the last known state");
            backoff = min;
        } else {
            tracing::debug!(target: LOG_TARGET, error = %e, "etcd still unreachable");
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(max);
    }
}

/// One connection: lease, full resync, then watch + keep-alive + GC +
/// flushes until something fails.
async fn session(
    shared: &Arc<Shared>,
    first: &mut Option<SyncSender<Result<(), String>>>,
) -> Result<Infallible, String> {
    let cfg = &shared.cfg;
    let opts = ConnectOptions::new()
        .with_connect_timeout(cfg.dial_timeout)
        .with_timeout(cfg.op_timeout)
        .with_keep_alive(cfg.keepalive_interval, cfg.op_timeout);
    let mut client = match timeout(
        cfg.dial_timeout,
        Client::connect(&cfg.endpoints, Some(opts)),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => return Err(format!("connect: no answer within {:?}", cfg.dial_timeout)),
    };

    // The lease: the old one if it is still alive, else a new one (the
    // node's leased keys went with the old one and are re-put below).
    let mut lease = shared.lock().lease;
    if lease != 0 {
        let ttl = op(shared, "lease ttl", client.lease_time_to_live(lease, None)).await?;
        if ttl.ttl() <= 0 {
            tracing::info!(target: LOG_TARGET, lease, "lease expired during the outage; taking a new one");
            lease = 0;
        }
    }
    if lease == 0 {
        let ttl = i64::try_from(cfg.lease_ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        lease = op(shared, "lease grant", client.lease_grant(ttl, None))
            .await?
            .id();
    }

    // Full resync: everything under the prefix replaces the mirror; own
    // keys are laid over it and re-put.
    let resp = op(
        shared,
        "get",
        client.get(
            shared.prefix.as_str(),
            Some(GetOptions::new().with_prefix()),
        ),
    )
    .await?;
    let revision = resp.header().map_or(0, |h| h.revision());
    let kvs: Vec<(String, Value)> = resp
        .kvs()
        .iter()
        .filter_map(|kv| {
            Some((
                rel(shared, kv.key())?.to_string(),
                Value {
                    text: String::from_utf8_lossy(kv.value()).into_owned(),
                    mod_rev: kv.mod_revision(),
                },
            ))
        })
        .collect();
    {
        let mut i = shared.lock();
        let mut m = Mirror::rebuild(Some(&i.mirror), revision, kvs);
        for (k, o) in &i.own {
            match &o.value {
                Some(v) => {
                    m.put(
                        k,
                        Value {
                            text: v.clone(),
                            mod_rev: 0,
                        },
                    );
                }
                None => {
                    m.delete(k);
                }
            }
        }
        i.mirror = m;
        i.own.values_mut().for_each(|o| o.written = false);
        i.lease = lease;
        i.client = Some(client.clone());
    }
    flush(shared).await?;
    restore_identities(shared, &mut client).await?;
    {
        let mut i = shared.lock();
        i.status.connected = true;
        i.status.resyncs += 1;
        i.status.last_error = None;
        i.status.since_unix = now_unix();
    }
    tracing::info!(target: LOG_TARGET, endpoints = %cfg.endpoints_str(), revision, lease, "connected to etcd, state resynced");
    shared.bump();
    shared.dirty.notify_one();
    if let Some(tx) = first.take() {
        let _ = tx.send(Ok(()));
    }

    let mut stream = op(
        shared,
        "watch",
        client.watch(
            shared.prefix.as_str(),
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        ),
    )
    .await?;
    let (mut keeper, mut keepalive) =
        op(shared, "lease keep-alive", client.lease_keep_alive(lease)).await?;
    let mut ka_tick = tokio::time::interval(cfg.keepalive_interval);
    ka_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut gc_tick = tokio::time::interval(cfg.gc_interval);
    gc_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ka_tick.tick() => {
                keeper.keep_alive().await.map_err(|e| format!("keep-alive: {e}"))?;
                match timeout(cfg.op_timeout, keepalive.message()).await {
                    // Alive: also retry own writes that failed (timed out)
                    // while the connection stayed up; a resync is not
                    // coming for them. Nothing pending: no request.
                    Ok(Ok(Some(r))) if r.ttl() > 0 => {
                        flush(shared).await?;
                    }
                    Ok(Ok(Some(_))) => {
                        shared.lock().lease = 0;
                        return Err("lease expired".into());
                    }
                    Ok(Ok(None)) => return Err("keep-alive stream closed".into()),
                    Ok(Err(e)) => return Err(format!("keep-alive: {e}")),
                    Err(_) => return Err(format!("keep-alive: no answer within {:?}", cfg.op_timeout)),
                }
            }
            msg = stream.message() => {
                let resp = match msg {
                    Ok(Some(r)) => r,
                    Ok(None) => return Err("watch closed".into()),
                    Err(e) => return Err(format!("watch: {e}")),
                };
                if resp.canceled() {
                    return Err(format!("watch canceled: {}", resp.cancel_reason()));
                }
                apply_events(shared, &resp);
            }
            _ = shared.kick.notified() => {
                flush(shared).await?;
            }
            _ = gc_tick.tick() => {
                gc(shared, &mut client).await?;
                restore_identities(shared, &mut client).await?;
            }
        }
    }
}

/// Applies a watch response to the mirror; bumps the change counter if
/// anything changed.
fn apply_events(shared: &Shared, resp: &etcd_client::WatchResponse) {
    let mut changed = false;
    {
        let mut i = shared.lock();
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let Some(key) = rel(shared, kv.key()) else {
                continue;
            };
            changed |= match ev.event_type() {
                EventType::Put => i.mirror.put(
                    key,
                    Value {
                        text: String::from_utf8_lossy(kv.value()).into_owned(),
                        mod_rev: kv.mod_revision(),
                    },
                ),
                EventType::Delete => {
                    // A delete of a key this node still wants (expired
                    // lease, someone else's delete) is re-put by a flush.
                    if i.own.get(key).is_some_and(|o| o.value.is_some()) {
                        if let Some(o) = i.own.get_mut(key) {
                            o.written = false;
                        }
                        shared.kick.notify_one();
                    }
                    i.mirror.delete(key)
                }
            };
        }
        if let Some(h) = resp.header() {
            i.mirror.revision = i.mirror.revision.max(h.revision());
        }
    }
    if changed {
        shared.bump();
        shared.dirty.notify_one();
    }
}

/// Writes every own key not yet written (one flush at a time, each
/// operation with the timeout). Counts successes in `ops`.
pub(super) async fn flush(shared: &Shared) -> Result<usize, String> {
    let _g = shared.flush_lock.lock().await;
    let (client, lease, todo) = {
        let i = shared.lock();
        let todo: Vec<_> = i
            .own
            .iter()
            .filter(|(_, o)| !o.written)
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        (i.client.clone(), i.lease, todo)
    };
    if todo.is_empty() {
        return Ok(0);
    }
    let Some(mut client) = client else {
        return Err("not connected".into());
    };
    let n = todo.len();
    for (key, own) in todo {
        let full = format!("{}{key}", shared.prefix);
        match &own.value {
            Some(v) => {
                let opts = own.leased.then(|| PutOptions::new().with_lease(lease));
                op(shared, "put", client.put(full, v.clone(), opts)).await?;
            }
            None => {
                op(shared, "delete", client.delete(full, None)).await?;
            }
        }
        let mut i = shared.lock();
        i.status.ops += 1;
        if i.own.get(&key).is_some_and(|o| o.seq == own.seq) {
            // Deletes and unleased (cluster-wide) writes are done once
            // written; the node's leased keys stay to be re-put at resyncs.
            if own.value.is_none() || !own.leased {
                i.own.remove(&key);
            } else if let Some(o) = i.own.get_mut(&key) {
                o.written = true;
            }
        }
    }
    Ok(n)
}

/// Why a new identity could not be allocated.
#[derive(Debug)]
pub(super) enum AllocError {
    /// The cluster range is full.
    Exhausted(IdentityError),
    /// etcd failed.
    Etcd(String),
}

/// Allocates (or finds) the cluster identity of `labels` in etcd, with this
/// node's reference: a Txn that takes a candidate number only if neither
/// its key nor the labels' key exists; on conflict the labels' existing
/// number or the next candidate.
pub(super) async fn allocate(shared: &Shared, labels: LabelSet) -> Result<u32, AllocError> {
    let e = AllocError::Etcd;
    let (client, lease) = {
        let i = shared.lock();
        (i.client.clone(), i.lease)
    };
    let Some(mut client) = client else {
        return Err(e("not connected".into()));
    };
    let canon = canonical(&labels);
    let labels_key = format!("{}{}", shared.prefix, Key::IdentityByLabels(canon).path());
    let ref_of = |id: u32| {
        format!(
            "{}{}",
            shared.prefix,
            Key::IdentityRef(id, shared.node.clone()).path()
        )
    };
    let label_json = serde_json::to_string(&labels).expect("labels serialize");
    let mut tried = std::collections::BTreeSet::new();
    for _ in 0..defaults::KVSTORE_ALLOC_ATTEMPTS {
        let candidate = {
            let i = shared.lock();
            next_free(&i.mirror.ids, &tried)
        };
        let Some(candidate) = candidate else {
            return Err(AllocError::Exhausted(IdentityError::Exhausted {
                scope: Scope::Cluster,
                lo: MIN_USER,
                hi: CIDR_BASE,
            }));
        };
        let id_key = format!("{}{}", shared.prefix, Key::IdentityById(candidate).path());
        let txn = Txn::new()
            .when([
                Compare::create_revision(id_key.as_str(), CompareOp::Equal, 0),
                Compare::create_revision(labels_key.as_str(), CompareOp::Equal, 0),
            ])
            .and_then([
                TxnOp::put(id_key.as_str(), label_json.as_str(), None),
                TxnOp::put(labels_key.as_str(), candidate.to_string(), None),
                TxnOp::put(
                    ref_of(candidate),
                    "",
                    Some(PutOptions::new().with_lease(lease)),
                ),
            ])
            .or_else([TxnOp::get(labels_key.as_str(), None)]);
        let resp = op(shared, "identity txn", client.txn(txn))
            .await
            .map_err(e)?;
        let rev = resp.header().map_or(0, |h| h.revision());
        shared.lock().status.ops += 1;
        if resp.succeeded() {
            let mut i = shared.lock();
            let rel_id = Key::IdentityById(candidate).path();
            i.mirror.put(
                &rel_id,
                Value {
                    text: label_json.clone(),
                    mod_rev: rev,
                },
            );
            let own_ref = Key::IdentityRef(candidate, shared.node.clone()).path();
            i.mirror.put(
                &own_ref,
                Value {
                    text: String::new(),
                    mod_rev: rev,
                },
            );
            i.seq += 1;
            let seq = i.seq;
            i.own.insert(
                own_ref,
                Own {
                    value: Some(String::new()),
                    leased: true,
                    seq,
                    written: true,
                },
            );
            drop(i);
            shared.dirty.notify_one();
            tracing::info!(target: LOG_TARGET, id = candidate, labels = ?labels, "identity allocated");
            return Ok(candidate);
        }
        // Someone else has these labels: take their number.
        let existing = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g
                .kvs()
                .first()
                .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse::<u32>().ok()),
            _ => None,
        });
        if let Some(id) = existing {
            {
                // Known from the watch already: keep its revision (the GC
                // compares it); else a placeholder the watch corrects.
                let mut i = shared.lock();
                let path = Key::IdentityById(id).path();
                if !i.mirror.raw.contains_key(&path) {
                    i.mirror.put(
                        &path,
                        Value {
                            text: label_json.clone(),
                            mod_rev: 0,
                        },
                    );
                }
            }
            let own_ref = Key::IdentityRef(id, shared.node.clone()).path();
            {
                let mut i = shared.lock();
                i.seq += 1;
                let seq = i.seq;
                i.own.insert(
                    own_ref.clone(),
                    Own {
                        value: Some(String::new()),
                        leased: true,
                        seq,
                        written: false,
                    },
                );
                i.mirror.put(
                    &own_ref,
                    Value {
                        text: String::new(),
                        mod_rev: 0,
                    },
                );
            }
            flush(shared).await.map_err(e)?;
            return Ok(id);
        }
        tried.insert(candidate);
    }
    Err(e(format!(
        "no identity number after {} attempts (heavy contention)",
        defaults::KVSTORE_ALLOC_ATTEMPTS
    )))
}

/// The next candidate number: after the highest one taken (mirror or
/// tried), else the lowest gap; `None` when the range is full.
fn next_free(
    ids: &std::collections::BTreeMap<u32, LabelSet>,
    tried: &std::collections::BTreeSet<u32>,
) -> Option<u32> {
    let top = ids
        .range(MIN_USER..CIDR_BASE)
        .next_back()
        .map(|(k, _)| *k)
        .into_iter()
        .chain(tried.iter().next_back().copied())
        .max();
    match top {
        None => Some(MIN_USER),
        Some(t) if t + 1 < CIDR_BASE => Some(t + 1),
        Some(_) => (MIN_USER..CIDR_BASE).find(|i| !ids.contains_key(i) && !tried.contains(i)),
    }
}

/// Deletes identities nobody has referenced for the grace period: the Txn
/// checks that the identity key is unchanged (mod_revision) and that no
/// reference exists, so a concurrent allocation or reference wins.
async fn gc(shared: &Shared, client: &mut Client) -> Result<(), String> {
    let now = Instant::now();
    let due: Vec<(u32, i64, String)> = {
        let mut guard = shared.lock();
        let i = &mut *guard;
        let unref: Vec<(u32, i64, String)> = i
            .mirror
            .ids
            .iter()
            .filter(|(id, _)| !i.mirror.refs.contains_key(id))
            .filter_map(|(id, l)| {
                let rev = i.mirror.raw.get(&Key::IdentityById(*id).path())?.mod_rev;
                (rev > 0).then(|| (*id, rev, canonical(l)))
            })
            .collect();
        i.unref_since
            .retain(|id, _| unref.iter().any(|(u, _, _)| u == id));
        for (id, _, _) in &unref {
            i.unref_since.entry(*id).or_insert(now);
        }
        unref
            .into_iter()
            .filter(|(id, _, _)| {
                i.unref_since
                    .get(id)
                    .is_some_and(|t| now.duration_since(*t) >= shared.cfg.gc_grace)
            })
            .collect()
    };
    for (id, rev, canon) in due {
        let id_key = format!("{}{}", shared.prefix, Key::IdentityById(id).path());
        let refs = format!("{}identities/refs/{id}/", shared.prefix);
        let labels_key = format!("{}{}", shared.prefix, Key::IdentityByLabels(canon).path());
        let txn = Txn::new()
            .when([
                Compare::mod_revision(id_key.as_str(), CompareOp::Equal, rev),
                Compare::create_revision(refs.as_str(), CompareOp::Equal, 0).with_prefix(),
                Compare::value(labels_key.as_str(), CompareOp::Equal, id.to_string()),
            ])
            .and_then([
                TxnOp::delete(id_key.as_str(), None),
                TxnOp::delete(labels_key.as_str(), None),
            ]);
        let r = op(shared, "identity gc txn", client.txn(txn)).await?;
        let mut i = shared.lock();
        i.status.ops += 1;
        i.unref_since.remove(&id);
        if r.succeeded() {
            tracing::info!(target: LOG_TARGET, id, "unreferenced identity deleted");
        }
    }
    Ok(())
}

/// Re-creates identities this node references whose keys vanished (a GC
/// that raced a reference, a wiped etcd), if their number and labels are
/// still free.
async fn restore_identities(shared: &Shared, client: &mut Client) -> Result<(), String> {
    let missing: Vec<(u32, LabelSet)> = {
        let i = shared.lock();
        i.own_ids
            .iter()
            .filter(|(id, _)| !i.mirror.raw.contains_key(&Key::IdentityById(**id).path()))
            .map(|(id, l)| (*id, l.clone()))
            .collect()
    };
    for (id, labels) in missing {
        let id_key = format!("{}{}", shared.prefix, Key::IdentityById(id).path());
        let labels_key = format!(
            "{}{}",
            shared.prefix,
            Key::IdentityByLabels(canonical(&labels)).path()
        );
        let label_json = serde_json::to_string(&labels).expect("labels serialize");
        let txn = Txn::new()
            .when([
                Compare::create_revision(id_key.as_str(), CompareOp::Equal, 0),
                Compare::create_revision(labels_key.as_str(), CompareOp::Equal, 0),
            ])
            .and_then([
                TxnOp::put(id_key.as_str(), label_json, None),
                TxnOp::put(labels_key.as_str(), id.to_string(), None),
            ]);
        let r = op(shared, "identity restore txn", client.txn(txn)).await?;
        if r.succeeded() {
            tracing::warn!(target: LOG_TARGET, id, "identity referenced by this node was missing in etcd; restored");
        } else {
            tracing::error!(target: LOG_TARGET, id, "identity referenced by this node is missing in etcd and its number or labels are taken");
        }
    }
    Ok(())
}

/// A put (`Some`) or delete of `rel_key` outside the node's own keys,
/// without a lease: whether the key existed (deletes; `true` for puts) and
/// the revision of a put.
pub(super) async fn direct(
    shared: Arc<Shared>,
    rel_key: String,
    value: Option<String>,
) -> Result<(bool, i64), String> {
    let client = shared.lock().client.clone();
    let Some(mut client) = client else {
        return Err("not connected".into());
    };
    let full = format!("{}{rel_key}", shared.prefix);
    match value {
        Some(v) => op(&shared, "put", client.put(full, v, None))
            .await
            .map(|r| (true, r.header().map_or(0, |h| h.revision()))),
        None => op(&shared, "delete", client.delete(full, None))
            .await
            .map(|r| (r.deleted() > 0, 0)),
    }
}

/// Rewrites the cache file after each burst of changes.
pub(super) async fn cache_writer(shared: Arc<Shared>) {
    loop {
        shared.dirty.notified().await;
        sleep(defaults::KVSTORE_CACHE_DEBOUNCE).await;
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || s.write_cache()).await;
    }
}
