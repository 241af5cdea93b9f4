//! The event history: how it is kept, read as a past state, and trimmed; and the migrations
//! of stores made before it was kept this way.
//!
//! Each value is stored in the event that wrote it, and a key's row in `kv` (its create and
//! mod revisions) holds it again only when it is small ([`inline`]): a large value is the
//! event at the key's mod revision. Rows of a few kilobytes (a CSR with its certificate)
//! made every commit split and rewrite `kv`'s pages; stored once, a commit writes half the
//! bytes. An event names the one it replaced (`prev_rev`), and a list at a past revision
//! reads the value from there (events written before this layout carry it in `prev`). So
//! trimming the history to a revision keeps, at or below it, exactly the events still
//! someone's value: a key's current one, and the one a later event replaced ([`trim`]).

use bytes::Bytes;
use rusqlite::{Connection, Transaction, params};

use super::{KeyRange, backend, row_kv};
use crate::{Event, EventKind, KeyValue, ListPage, Revision, StoreError, prefix_end};

/// The keys of `range` as they were at `revision`; `Compacted` when the history no longer
/// reaches back to it.
pub(super) fn list_at(
    c: &mut Connection,
    range: &KeyRange,
    revision: Revision,
) -> Result<ListPage, StoreError> {
    let tx = c.transaction().map_err(backend)?;
    reaches_back_to(&tx, revision)?;
    let current = super::stored_revision(&tx)?;
    if revision > current {
        return Err(backend(format!(
            "required revision {revision} is a future revision (current {current})"
        )));
    }
    let sql = if range.inclusive {
        LIST_AT_FROM
    } else {
        LIST_AT_AFTER
    };
    let mut stmt = tx.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(
            params![range.lower, range.upper, revision, range.fetch()],
            |r| {
                let value: Option<Vec<u8>> = r.get(0)?;
                let mod_rev: Option<i64> = r.get(2)?;
                let key: String = r.get(3)?;
                Ok((key, value, r.get::<_, i64>(1)?, mod_rev))
            },
        )
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let mut items = Vec::with_capacity(rows.len());
    for (key, value, create_revision, mod_revision) in rows {
        // History written before events kept what they replaced cannot say.
        let (Some(value), Some(mod_revision)) = (value, mod_revision) else {
            return Err(StoreError::Compacted {
                requested: revision,
                oldest: current,
            });
        };
        items.push(KeyValue {
            key,
            value: value.into(),
            create_revision,
            mod_revision,
        });
    }
    Ok(range.page(items, revision))
}

/// Stores made before events carried the value they replaced get the columns; their old
/// history reads back without it.
pub(super) fn add_prev_column(conn: &Connection) -> Result<(), StoreError> {
    for (column, ty) in [("prev", "BLOB"), ("prev_rev", "INTEGER")] {
        if !has_column(conn, "events", column)? {
            conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {column} {ty}"))
                .map_err(backend)?;
        }
    }
    Ok(())
}

/// The revision the history has been trimmed to (`meta.compacted`).
pub(super) fn compacted(conn: &Connection) -> Result<Revision, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = 'compacted'")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(backend)
}

/// `Compacted` when the history, as this read sees it, no longer reaches back to `revision`.
fn reaches_back_to(conn: &Connection, revision: Revision) -> Result<(), StoreError> {
    let oldest = compacted(conn)?;
    if revision < oldest {
        return Err(StoreError::Compacted {
            requested: revision,
            oldest,
        });
    }
    Ok(())
}

/// The events under `prefix` after revision `after`, each with the value it replaced, for a
/// watch to replay; `Compacted` when the history no longer reaches back to it (checked in
/// the same read: a trim in between would leave holes in what is replayed).
pub(super) fn replay(
    c: &mut Connection,
    prefix: &str,
    after: Revision,
) -> Result<Vec<Event>, StoreError> {
    let upper = prefix_end(prefix).unwrap_or_else(|| "\u{7f}".repeat(8));
    let tx = c.transaction().map_err(backend)?;
    reaches_back_to(&tx, after)?;
    let mut stmt = tx
        .prepare_cached(concat!(
            "SELECT e.value, e.create_rev, e.rev, e.key, e.kind, e.created, ",
            replaced_value!(),
            " FROM events e LEFT JOIN events p ON p.rev = e.prev_rev
             WHERE e.rev > ?1 AND e.key >= ?2 AND e.key < ?3 ORDER BY e.rev"
        ))
        .map_err(backend)?;
    stmt.query_map(params![after, prefix, upper], |r| {
        let kv = row_kv(r.get(3)?, r)?;
        let prev: Option<Vec<u8>> = r.get(6)?;
        let (kind, prev) = match r.get::<_, i64>(4)? {
            0 => (EventKind::Put, prev.map(Bytes::from)),
            _ => (EventKind::Delete, Some(kv.value.clone())),
        };
        Ok(Event {
            kind,
            kv,
            created: r.get::<_, i64>(5)? != 0,
            prev,
        })
    })
    .map_err(backend)?
    .collect::<Result<Vec<_>, _>>()
    .map_err(backend)
}

/// Trims the history from revision `from` (exclusive) to `to`: the events those revisions
/// replaced go, and so do their deletions (a deleted key has no value to keep). What stays
/// at or below `to` is each key's current value, and each value a later event replaced,
/// until that event is trimmed in its turn.
pub(super) fn trim(tx: &Transaction<'_>, from: Revision, to: Revision) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM events WHERE rev IN
           (SELECT prev_rev FROM events WHERE rev > ?1 AND rev <= ?2 AND prev_rev IS NOT NULL)",
        "DELETE FROM events WHERE rev > ?1 AND rev <= ?2 AND kind = 1",
    ] {
        tx.prepare_cached(sql)
            .and_then(|mut st| st.execute([from, to]))
            .map_err(backend)?;
    }
    Ok(())
}

/// The largest value `kv` holds in place; a larger one is read from its event.
const INLINE_BYTES: usize = 1024;

/// What `kv` holds of a value: the value when it is small, else nothing.
pub(super) fn inline(value: &[u8]) -> Option<&[u8]> {
    (value.len() <= INLINE_BYTES).then_some(value)
}

/// The layout this version writes (`PRAGMA user_version`): 1 since values are kept once.
const LAYOUT: i64 = 1;

/// Refuses a store a newer kubeboot laid out: this one would misread it.
pub(super) fn check_layout(conn: &Connection) -> Result<(), StoreError> {
    let layout: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    if layout > LAYOUT {
        return Err(StoreError::Backend(format!(
            "the store was laid out by a newer kubeboot (layout {layout}; this one knows up to \
             {LAYOUT}): run that version, or restore a copy of the store made before it"
        )));
    }
    Ok(())
}

/// Stores made when `kv` held every value: each key's value is made sure of in the event
/// that wrote it (written back at its revision when the history had been trimmed past it),
/// `kv` keeps only the small ones, and events written before they named the one they
/// replaced name it now (so that trimming them lets it go). One transaction, taken before
/// the layout is looked at: a crash leaves the store as it was, and a second process
/// opening it at once waits, then finds it done.
pub(super) fn keep_values_once(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let every_value_in_kv = tx
        .prepare("SELECT 1 FROM pragma_table_info('kv') WHERE name = 'value' AND \"notnull\"")
        .and_then(|mut s| s.exists([]))
        .map_err(backend)?;
    if !every_value_in_kv {
        tx.execute_batch(&format!("PRAGMA user_version = {LAYOUT}"))
            .map_err(backend)?;
        return tx.commit().map_err(backend);
    }
    tx.execute_batch(&format!(
        "UPDATE events SET prev_rev = p.prev
           FROM (SELECT rev, lag(rev) OVER (PARTITION BY key ORDER BY rev) AS prev FROM events) p
           WHERE events.rev = p.rev AND events.created = 0 AND events.prev_rev IS NULL
             AND p.prev IS NOT NULL;
         INSERT OR IGNORE INTO events (rev, key, kind, value, create_rev, created)
           SELECT mod_rev, key, 0, value, create_rev, create_rev = mod_rev FROM kv;
         CREATE TABLE kv_small_values (key TEXT PRIMARY KEY, value BLOB,
           create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL) WITHOUT ROWID;
         INSERT INTO kv_small_values SELECT key,
           CASE WHEN length(value) <= {INLINE_BYTES} THEN value END, create_rev, mod_rev FROM kv;
         DROP TABLE kv;
         ALTER TABLE kv_small_values RENAME TO kv;
         PRAGMA user_version = {LAYOUT};"
    ))
    .map_err(backend)?;
    tx.commit().map_err(backend)
}

fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")
        .and_then(|mut s| s.exists([table, column]))
        .map_err(backend)
}

/// The SQL of a list as it was at revision ?3, of the keys from ?1 (`>=`) or after it
/// (`>`), below ?2, at most ?4: the keys unchanged since, and for each key changed after it,
/// what its first later change replaced (nothing, if that change created it).
macro_rules! list_at_sql {
    ($from:literal) => {
        concat!(
            "SELECT ",
            kv_value!(),
            ", k.create_rev, k.mod_rev, k.key FROM kv k
             WHERE k.key ",
            $from,
            " ?1 AND k.key < ?2 AND k.mod_rev <= ?3
           UNION ALL
           SELECT CASE e.kind WHEN 1 THEN e.value ELSE ",
            replaced_value!(),
            " END, e.create_rev, e.prev_rev, e.key
             FROM events e JOIN (SELECT key, MIN(rev) AS first FROM events
                                 WHERE rev > ?3 AND key ",
            $from,
            " ?1 AND key < ?2 GROUP BY key) f
               ON e.rev = f.first
             LEFT JOIN events p ON p.rev = e.prev_rev
             WHERE e.created = 0
           ORDER BY 4 LIMIT ?4"
        )
    };
}

/// A list as it was at a revision, of the keys from ?1.
const LIST_AT_FROM: &str = list_at_sql!(">=");

/// A list as it was at a revision, of the keys after ?1.
const LIST_AT_AFTER: &str = list_at_sql!(">");
