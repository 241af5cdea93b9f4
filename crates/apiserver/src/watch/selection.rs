//! Which event a watcher with a label or field selector is sent for one change, as
//! kube-apiserver's watch cache decides it (`cacheWatcher.convertToWatchEvent`): the old and
//! the new state of the object are both held against the selector. An object that comes to
//! match arrives `ADDED`, one that stops matching leaves `DELETED` (its last matching state,
//! at the event's resourceVersion), and a change outside the selection sends nothing.

use super::cache::EventType;

/// Which state of the object an event carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The state after the change (for a delete: the last state).
    New,
    /// The state the change replaced, at the change's resourceVersion.
    Replaced,
}

/// What a watcher is sent for a change of type `kind`, given whether its selector matches
/// the new state and the replaced one (`None` when the store no longer holds it: the
/// change is then judged by its new state alone, as a plain update).
pub fn delivered(
    kind: EventType,
    new_matches: bool,
    replaced_matches: Option<bool>,
) -> Option<(EventType, State)> {
    let (now_passes, before_passed) = match kind {
        EventType::Added => (new_matches, false),
        EventType::Modified => (new_matches, replaced_matches.unwrap_or(new_matches)),
        // A delete's object is the last state: it passed if it matched.
        EventType::Deleted => (false, new_matches),
    };
    match (now_passes, before_passed) {
        (true, false) => Some((EventType::Added, State::New)),
        (true, true) => Some((EventType::Modified, State::New)),
        (false, true) if kind == EventType::Deleted => Some((EventType::Deleted, State::New)),
        (false, true) => Some((EventType::Deleted, State::Replaced)),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::{Added, Deleted, Modified};

    #[test]
    fn a_watcher_sees_an_object_enter_and_leave_its_selection() {
        // (case, change, selector matches new state, matches replaced state, sent)
        type Case = (
            &'static str,
            EventType,
            bool,
            Option<bool>,
            Option<(EventType, State)>,
        );
        let cases: [Case; 12] = [
            (
                "created matching",
                Added,
                true,
                None,
                Some((Added, State::New)),
            ),
            ("created not matching", Added, false, None, None),
            (
                "labelled into the selection",
                Modified,
                true,
                Some(false),
                Some((Added, State::New)),
            ),
            (
                "changed while selected",
                Modified,
                true,
                Some(true),
                Some((Modified, State::New)),
            ),
            (
                "labelled out of the selection",
                Modified,
                false,
                Some(true),
                Some((Deleted, State::Replaced)),
            ),
            (
                "changed while not selected",
                Modified,
                false,
                Some(false),
                None,
            ),
            (
                "replaced state unknown, new matches",
                Modified,
                true,
                None,
                Some((Modified, State::New)),
            ),
            (
                "replaced state unknown, new does not",
                Modified,
                false,
                None,
                None,
            ),
            (
                "deleted while selected",
                Deleted,
                true,
                None,
                Some((Deleted, State::New)),
            ),
            ("deleted while not selected", Deleted, false, None, None),
            (
                "deleted, replaced ignored for a delete",
                Deleted,
                true,
                Some(false),
                Some((Deleted, State::New)),
            ),
            (
                "deleted not matching, replaced ignored",
                Deleted,
                false,
                Some(true),
                None,
            ),
        ];
        for (case, kind, new, replaced, want) in cases {
            assert_eq!(delivered(kind, new, replaced), want, "{case}");
        }
    }

    #[test]
    fn labelled_in_out_in_then_deleted_is_added_deleted_added_deleted() {
        // The sequence real clients saw as MODIFIED, MODIFIED, DELETED.
        let matches = [false, true, false, true];
        let mut sent = Vec::new();
        for pair in matches.windows(2) {
            sent.extend(delivered(Modified, pair[1], Some(pair[0])).map(|(t, _)| t));
        }
        sent.extend(delivered(Deleted, true, None).map(|(t, _)| t));
        assert_eq!(sent, [Added, Deleted, Added, Deleted]);
    }
}
