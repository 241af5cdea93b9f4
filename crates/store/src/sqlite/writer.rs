//! The writer thread: the one place the embedded store changes. It takes every write
//! waiting, commits them in one transaction (group commit: one fsync for many writes), keeps
//! the point-read cache exact around the commit, and only then answers the writers and
//! publishes the events.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Inner, backend, row_kv};
use crate::{Event, EventKind, KeyValue, Revision, StoreError};

/// The most writes one commit takes.
const MAX_BATCH: usize = 2048;

pub(super) enum WriteKind {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Option<Revision>,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

impl WriteKind {
    /// The key written, if any.
    pub(super) fn key(&self) -> Option<&str> {
        match self {
            WriteKind::Create { key, .. }
            | WriteKind::Update { key, .. }
            | WriteKind::Delete { key, .. } => Some(key),
            WriteKind::Compact { .. } => None,
        }
    }
}

pub(super) struct WriteOp {
    pub(super) kind: WriteKind,
    pub(super) reply: oneshot::Sender<Result<KeyValue, StoreError>>,
}

/// Commits the writes handed over, as many together as have queued (group commit): each
/// commit is one `fdatasync`, whatever it holds.
pub(super) fn writer_loop(
    mut conn: Connection,
    rx: std_mpsc::Receiver<WriteOp>,
    inner: std::sync::Weak<Inner>,
    history: i64,
) {
    while let Ok(first) = rx.recv() {
        // Woken by a write, the writer first lets the threads waiting for this CPU run (on
        // an idle machine there are none, and this returns at once): requests in progress
        // hand over their writes meanwhile, and one commit takes them all. Without it, on a
        // busy machine each write woke the writer ahead of the request that sent it: `bench
        // join` of 10,000 nodes on 2 CPUs made 15,300 commits of its 40,000 writes, and
        // makes 2,500 with it.
        std::thread::yield_now();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let started = Instant::now();
        let (mut rev, mut compacted) = *inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .latest
            .begin(batch.iter().filter_map(|op| op.kind.key()));
        let outcome = commit_batch(&mut conn, &batch, &mut rev, &mut compacted, history);
        let elapsed = started.elapsed();
        // Before anyone is answered, so that a writer reads its own write.
        inner
            .latest
            .end(batch.iter().enumerate().filter_map(|(i, op)| {
                let key = op.kind.key()?;
                let now = match &outcome {
                    Ok(results) => match &results[i] {
                        (Ok(kv), Some(ev)) if ev.kind == EventKind::Put => Some(kv),
                        _ => None,
                    },
                    Err(_) => None,
                };
                Some((key, now))
            }));
        match outcome {
            Ok(results) => {
                *inner.state.lock().unwrap_or_else(PoisonError::into_inner) = (rev, compacted);
                if let Some(obs) = &inner.commit_observer {
                    obs(batch.len(), elapsed);
                }
                for (op, (result, event)) in batch.into_iter().zip(results) {
                    if let Some(ev) = event {
                        let _ = inner.events.send(Arc::new(ev));
                    }
                    let _ = op.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed");
                for op in batch {
                    let _ = op.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

type OpResult = (Result<KeyValue, StoreError>, Option<Event>);

fn commit_batch(
    conn: &mut Connection,
    batch: &[WriteOp],
    rev: &mut Revision,
    compacted: &mut Revision,
    history: i64,
) -> Result<Vec<OpResult>, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut next = *rev;
    let mut results = Vec::with_capacity(batch.len());
    for op in batch {
        results.push(apply(&tx, &op.kind, &mut next)?);
    }
    // Statements every commit runs are prepared once per connection (parsing SQL showed in
    // profiles).
    let exec = |sql: &str, value: Revision| {
        tx.prepare_cached(sql)
            .and_then(|mut st| st.execute([value]))
            .map_err(backend)
    };
    // The revision is the newest event's (`super::stored_revision`): a commit writes no
    // page for it. The history is trimmed in steps, so that most commits touch neither its
    // oldest page nor `meta`; `meta.revision` is written with each trim, which may leave the
    // event table empty.
    let mut new_compacted = super::history::compacted(&tx)?;
    if next - history > new_compacted + compaction_step(history) {
        super::history::trim(&tx, new_compacted, next - history)?;
        new_compacted = next - history;
        exec(
            "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
            new_compacted,
        )?;
        exec("UPDATE meta SET value = ?1 WHERE name = 'revision'", next)?;
    }
    tx.commit().map_err(backend)?;
    *rev = next;
    *compacted = new_compacted.max(*compacted);
    Ok(results)
}

/// How far past the kept history the oldest events may go before they are trimmed: a
/// sixteenth of it, between 1 and 1,024 revisions (one trim deletes at most that many).
fn compaction_step(history: i64) -> i64 {
    (history / 16).clamp(1, 1024)
}

/// Applies one write inside the batch transaction. Err only for backend failures; a
/// refused write (conflict, missing key) is an `Ok` carrying the refusal.
fn apply(
    tx: &Transaction<'_>,
    kind: &WriteKind,
    rev: &mut Revision,
) -> Result<OpResult, StoreError> {
    let (key, expected) = match kind {
        WriteKind::Compact { revision } => {
            let upto = (*revision).min(*rev);
            super::history::trim(tx, super::history::compacted(tx)?, upto)?;
            tx.execute(
                "UPDATE meta SET value = max(value, ?1) WHERE name = 'compacted'",
                [upto],
            )
            .map_err(backend)?;
            // The history may now be empty: the revision is kept where it can be read.
            tx.execute(
                "UPDATE meta SET value = max(value, ?1) WHERE name = 'revision'",
                [*rev],
            )
            .map_err(backend)?;
            let kv = KeyValue {
                key: String::new(),
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: upto,
            };
            return Ok((Ok(kv), None));
        }
        WriteKind::Create { key, .. } => (key, None),
        WriteKind::Update { key, expected, .. } | WriteKind::Delete { key, expected } => {
            (key, *expected)
        }
    };
    let current = tx
        .prepare_cached(super::GET)
        .map_err(backend)?
        .query_row([key], |r| row_kv(key.clone(), r))
        .optional()
        .map_err(backend)?;
    let refuse = |e: StoreError| Ok((Err(e), None));
    match (kind, &current) {
        (WriteKind::Create { .. }, Some(_)) => {
            return refuse(StoreError::AlreadyExists(key.clone()));
        }
        (WriteKind::Compact { .. }, _) => unreachable!("handled above"),
        (WriteKind::Update { .. } | WriteKind::Delete { .. }, None) => {
            return refuse(StoreError::NotFound(key.clone()));
        }
        (_, Some(cur)) if expected.is_some_and(|e| e != cur.mod_revision) => {
            return refuse(StoreError::Conflict {
                key: key.clone(),
                current: cur.mod_revision,
            });
        }
        _ => {}
    }
    *rev += 1;
    let r = *rev;
    let prev = current.as_ref().map(|c| c.value.clone());
    let prev_rev = current.as_ref().map(|c| c.mod_revision);
    let (event_kind, kv, created) = match kind {
        WriteKind::Create { value, .. } | WriteKind::Update { value, .. } => {
            let create_revision = current.as_ref().map_or(r, |c| c.create_revision);
            tx.prepare_cached(
                "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev",
            )
            .map_err(backend)?
            .execute(params![
                key,
                super::history::inline(value),
                create_revision,
                r
            ])
            .map_err(backend)?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision,
                mod_revision: r,
            };
            (EventKind::Put, kv, current.is_none())
        }
        WriteKind::Compact { .. } => unreachable!("handled above"),
        WriteKind::Delete { .. } => {
            tx.prepare_cached("DELETE FROM kv WHERE key = ?1")
                .map_err(backend)?
                .execute([key])
                .map_err(backend)?;
            let mut kv = current.expect("presence checked above");
            kv.mod_revision = r;
            (EventKind::Delete, kv, false)
        }
    };
    // The value is written once, here; what it replaced stays at `prev_rev` (a deletion
    // keeps the last value, for the watchers that are told of it).
    tx.prepare_cached(
        "INSERT INTO events (rev, key, kind, value, create_rev, created, prev_rev)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(backend)?
    .execute(params![
        r,
        key,
        i64::from(event_kind == EventKind::Delete),
        kv.value.as_ref(),
        kv.create_revision,
        i64::from(created),
        prev_rev
    ])
    .map_err(backend)?;
    let event = Event {
        kind: event_kind,
        kv: kv.clone(),
        created,
        prev,
    };
    Ok((Ok(kv), Some(event)))
}
