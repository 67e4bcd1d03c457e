//! The rows of one `WHERE name IN (...)` read, matched back to the ids asked for, so that each
//! id gets what `WHERE name = ?` alone would have answered (pure; used by
//! `MariaDbSource::load_many`).
//!
//! The database compares names in the column's collation (usually case-insensitive, trailing
//! spaces ignored, and for the Unicode ones more), so a row may answer an id that is not
//! byte-equal to its name. A row whose name equals an id exactly is that id's answer (names
//! are the primary key: no second row can match it). An id without such a row is answered
//! "not found" only when that is certain: every row of the read is some other id's exact
//! match, and the id could not collate-equal any other id asked (plain printable ASCII, whose
//! ASCII case fold without trailing spaces is its own). Every other id is left undecided, and
//! the caller reads it alone.

use std::collections::{HashMap, HashSet};

use super::row::RowOutcome;
use super::skip::SkipReason;

/// For each id (same order): its answer, or `None` when only a read of its own can tell.
pub(super) fn match_rows(site: &str, ids: &[String], rows: Vec<RowOutcome>) -> Vec<Option<RowOutcome>> {
    let returned = rows.len();
    let by_name: HashMap<String, RowOutcome> = rows.into_iter().map(|r| (r.schedule().to_string(), r)).collect();
    let distinct: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let claimed = by_name.keys().filter(|name| distinct.contains(name.as_str())).count();
    let mut folds: HashMap<String, usize> = HashMap::new();
    for id in &distinct {
        *folds.entry(fold(id)).or_default() += 1;
    }
    ids.iter()
        .map(|id| {
            if let Some(row) = by_name.get(id) {
                return Some(row.clone());
            }
            let certain = claimed == returned && plain(id) && folds.get(&fold(id)) == Some(&1);
            certain.then(|| RowOutcome::Skipped {
                site: site.to_string(),
                schedule: id.clone(),
                reason: SkipReason::NotFound,
            })
        })
        .collect()
}

/// Printable ASCII only: no collation equates two such names beyond case and trailing spaces.
fn plain(id: &str) -> bool {
    id.bytes().all(|b| (b' '..=b'~').contains(&b))
}

fn fold(id: &str) -> String {
    id.trim_end_matches(' ').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::plain_row;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Each answer as `id=loaded`, `id=not_found` or `id=?` (undecided).
    fn shown(answers: &[Option<RowOutcome>]) -> Vec<String> {
        answers
            .iter()
            .map(|a| match a {
                Some(RowOutcome::Loaded(s)) => format!("{}=loaded", s.id),
                Some(RowOutcome::Skipped { schedule, reason, .. }) => format!("{schedule}={}", reason.code()),
                None => "?".to_string(),
            })
            .collect()
    }

    #[test]
    fn exact_rows_answer_their_ids_and_plain_missing_ids_are_not_found() {
        let rows = vec![plain_row("s1", "TS-2", "* * * * *"), plain_row("s1", "TS-1", "* * * * *")];
        let got = match_rows("s1", &ids(&["TS-1", "TS-9", "TS-2", "TS-1"]), rows);
        assert_eq!(shown(&got), ["TS-1=loaded", "TS-9=not_found", "TS-2=loaded", "TS-1=loaded"]);
    }

    #[test]
    fn a_row_no_id_names_exactly_leaves_the_other_ids_undecided() {
        // `ts-1` found `TS-1` through a case-insensitive collation: which id it answers (and
        // whether `TS-9` has a row) only a read of its own can tell.
        let rows = vec![plain_row("s1", "TS-1", "* * * * *")];
        let got = match_rows("s1", &ids(&["ts-1", "TS-9"]), rows);
        assert_eq!(shown(&got), ["?", "?"]);
    }

    #[test]
    fn ids_that_may_collate_equal_stay_undecided() {
        let rows = vec![plain_row("s1", "TS-1", "* * * * *")];
        // `ts-1 ` may be `TS-1` in the database's eyes; `TS-é` may equal some `TS-e`.
        let got = match_rows("s1", &ids(&["TS-1", "ts-1 ", "TS-\u{e9}", "TS-\u{0}"]), rows);
        assert_eq!(shown(&got), ["TS-1=loaded", "?", "?", "?"]);
    }
}
