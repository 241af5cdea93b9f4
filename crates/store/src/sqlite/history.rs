//! The event history read as a past state: the list of keys as they were at a revision,
//! from the value each later event replaced (`prev`, `prev_rev`), and the migration that
//! gives stores made before those columns existed.

use rusqlite::{Connection, params};

use super::{KeyRange, backend};
use crate::{KeyValue, ListPage, Revision, StoreError};

/// The keys of `range` as they were at `revision`; `Compacted` when the history no longer
/// reaches back to it.
pub(super) fn list_at(
    c: &mut Connection,
    range: &KeyRange,
    revision: Revision,
) -> Result<ListPage, StoreError> {
    let tx = c.transaction().map_err(backend)?;
    let compacted: i64 = tx
        .prepare_cached("SELECT value FROM meta WHERE name = 'compacted'")
        .map_err(backend)?
        .query_row([], |r| r.get(0))
        .map_err(backend)?;
    let current = super::stored_revision(&tx)?;
    if revision < compacted {
        return Err(StoreError::Compacted {
            requested: revision,
            oldest: compacted,
        });
    }
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
        let has = conn
            .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = ?1")
            .and_then(|mut s| s.exists([column]))
            .map_err(backend)?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {column} {ty}"))
                .map_err(backend)?;
        }
    }
    Ok(())
}

/// A list as it was at revision ?3: the keys unchanged since, and for each key changed
/// after it, what its first later change replaced (nothing, if that change created it).
const LIST_AT_FROM: &str = "SELECT value, create_rev, mod_rev, key FROM kv
     WHERE key >= ?1 AND key < ?2 AND mod_rev <= ?3
   UNION ALL
   SELECT CASE e.kind WHEN 1 THEN e.value ELSE e.prev END, e.create_rev, e.prev_rev, e.key
     FROM events e JOIN (SELECT key, MIN(rev) AS first FROM events
                         WHERE rev > ?3 AND key >= ?1 AND key < ?2 GROUP BY key) f
       ON e.rev = f.first
     WHERE e.created = 0
   ORDER BY key LIMIT ?4";

/// [`LIST_AT_FROM`] for the keys after ?1.
const LIST_AT_AFTER: &str = "SELECT value, create_rev, mod_rev, key FROM kv
     WHERE key > ?1 AND key < ?2 AND mod_rev <= ?3
   UNION ALL
   SELECT CASE e.kind WHEN 1 THEN e.value ELSE e.prev END, e.create_rev, e.prev_rev, e.key
     FROM events e JOIN (SELECT key, MIN(rev) AS first FROM events
                         WHERE rev > ?3 AND key > ?1 AND key < ?2 GROUP BY key) f
       ON e.rev = f.first
     WHERE e.created = 0
   ORDER BY key LIMIT ?4";
