//! The follow set: schedules named by a legacy request, whose rows are re-read for a while.
//!
//! The original BTU app tells the daemon about a change from `before_save` / `on_trash`,
//! before its transaction commits, so the row the daemon reads at the request is the old one.
//! Each such schedule is followed on every database site for `legacy_follow_secs`: re-read
//! (one query per site for all followed ids, every [`READ_INTERVAL`]) and, as soon as what a
//! read shows differs from what was seen, the committed row is applied as a notify would; when
//! the window ends it is applied once more (so a rolled-back delete or disable restores the
//! schedule). A new request for a followed schedule restarts its window.
//!
//! Pure: the engine loop asks when to read ([`FollowSet::read_at`]), reads in a spawned task
//! and hands the rows back ([`FollowSet::on_read`]), which says which rows to apply.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::source::{Fingerprint, RowOutcome, SkipReason};

/// How often the followed rows are re-read.
pub(super) const READ_INTERVAL: Duration = Duration::from_millis(500);

/// What a read showed of a schedule: runnable with this fingerprint, or why it does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    Runs(Fingerprint),
    NotRunning(SkipReason),
    /// The site could not be read at the request: any read differs.
    Unread,
}

impl Seen {
    pub fn of(row: &RowOutcome) -> Seen {
        match row {
            RowOutcome::Loaded(spec) => Seen::Runs(spec.fingerprint),
            RowOutcome::Skipped { reason, .. } => Seen::NotRunning(reason.clone()),
        }
    }
}

/// Why [`FollowSet::on_read`] hands a row back to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Because {
    /// It differs from what was seen before (the app's transaction committed).
    Changed,
    /// The window ended: applied once more, no longer followed.
    WindowEnded,
}

/// One followed schedule of one site.
#[derive(Debug)]
struct Follow {
    deadline: Instant,
    seen: Seen,
    /// The number of reads started before this follow (re)started: the rows of those reads
    /// may be older than what the request saw, so they are not compared.
    after_read: u64,
}

/// The read in flight: its number and when it started.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    number: u64,
    started: Instant,
}

#[derive(Debug)]
pub(super) struct FollowSet {
    window: Duration,
    /// Per site (engine order): followed ids; `None` for sites whose source is not followed
    /// (schedules files).
    sites: Vec<Option<HashMap<String, Follow>>>,
    reads_started: u64,
    in_flight: Option<InFlight>,
    next_read: Option<Instant>,
    /// Per site: its last read failed (so a failure is reported once, not every read).
    failing: Vec<bool>,
}

impl FollowSet {
    /// A set over the engine's sites: `followable[i]` says whether site `i`'s rows are
    /// followed (database sites); `window` = `legacy_follow_secs` (zero: nothing is).
    pub fn new(followable: impl IntoIterator<Item = bool>, window: Duration) -> Self {
        let sites: Vec<_> = followable.into_iter().map(|f| f.then(HashMap::new)).collect();
        FollowSet {
            window,
            failing: vec![false; sites.len()],
            sites,
            reads_started: 0,
            in_flight: None,
            next_read: None,
        }
    }

    /// A site added to the engine (found in a bench) at the next index.
    pub fn add_site(&mut self, followable: bool) {
        self.sites.push(followable.then(HashMap::new));
        self.failing.push(false);
    }

    /// Whether site `idx` follows schedules (a database site, and a non-zero window).
    pub fn follows(&self, idx: usize) -> bool {
        !self.window.is_zero() && self.sites.get(idx).is_some_and(Option::is_some)
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Follows schedule `id` of site `idx` from `now` for the window, comparing later reads
    /// with `seen` (what the request read). A schedule already followed starts over.
    pub fn follow(&mut self, idx: usize, id: &str, seen: Seen, now: Instant) {
        if !self.follows(idx) {
            return;
        }
        let follow = Follow { deadline: now + self.window, seen, after_read: self.reads_started };
        if let Some(Some(ids)) = self.sites.get_mut(idx) {
            ids.insert(id.to_string(), follow);
        }
        if self.in_flight.is_none() && self.next_read.is_none() {
            self.next_read = Some(now + READ_INTERVAL);
        }
    }

    /// How many schedules are followed, over all sites.
    pub fn len(&self) -> usize {
        self.sites.iter().flatten().map(HashMap::len).sum()
    }

    /// When the next read is due; `None` while one is in flight or nothing is followed.
    pub fn read_at(&self) -> Option<Instant> {
        if self.in_flight.is_some() { None } else { self.next_read }
    }

    /// Starts a read: the followed ids of every site that has some (sorted, for stable
    /// queries).
    pub fn start_read(&mut self, now: Instant) -> Vec<(usize, Vec<String>)> {
        self.in_flight = Some(InFlight { number: self.reads_started, started: now });
        self.reads_started += 1;
        self.next_read = None;
        self.sites
            .iter()
            .enumerate()
            .filter_map(|(idx, ids)| {
                let ids = ids.as_ref().filter(|ids| !ids.is_empty())?;
                let mut list: Vec<String> = ids.keys().cloned().collect();
                list.sort();
                Some((idx, list))
            })
            .collect()
    }

    /// The rows the read in flight got for site `idx` (one per followed id; a missing one
    /// counts as not found): the rows to apply now — those that differ from what was seen,
    /// and, once, those whose window has ended (which are then no longer followed).
    pub fn on_read(&mut self, idx: usize, rows: Vec<RowOutcome>) -> Vec<(RowOutcome, Because)> {
        if let Some(failing) = self.failing.get_mut(idx) {
            *failing = false;
        }
        let (Some(read), Some(Some(ids))) = (self.in_flight, self.sites.get_mut(idx)) else { return Vec::new() };
        let mut apply = Vec::new();
        for row in rows {
            let Some(follow) = ids.get_mut(row.schedule()) else { continue };
            if follow.after_read > read.number {
                continue; // followed (again) after this read started
            }
            let seen = Seen::of(&row);
            let because = if seen != follow.seen { Some(Because::Changed) } else { None };
            if follow.deadline <= read.started {
                ids.remove(row.schedule());
                apply.push((row, because.unwrap_or(Because::WindowEnded)));
            } else if let Some(because) = because {
                follow.seen = seen;
                apply.push((row, because));
            }
        }
        apply
    }

    /// Site `idx` could not be read: its schedules stay followed (past their window too) until
    /// a read succeeds. `true` when the previous read of the site had not failed.
    pub fn read_failed(&mut self, idx: usize) -> bool {
        self.failing.get_mut(idx).is_some_and(|failing| !std::mem::replace(failing, true))
    }

    /// The read in flight is over (every site answered or failed): the next one is due one
    /// interval later, if anything is still followed.
    pub fn end_read(&mut self, now: Instant) {
        self.in_flight = None;
        self.next_read = (self.len() > 0).then(|| now + READ_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::plain_row;

    fn runs(id: &str, cron: &str) -> RowOutcome {
        plain_row("s1", id, cron)
    }

    fn missing(id: &str) -> RowOutcome {
        RowOutcome::Skipped { site: "s1".into(), schedule: id.into(), reason: SkipReason::NotFound }
    }

    fn ids(rows: &[(RowOutcome, Because)]) -> Vec<&str> {
        rows.iter().map(|(row, _)| row.schedule()).collect()
    }

    const WINDOW: Duration = Duration::from_secs(60);

    #[test]
    fn a_change_is_applied_once_then_the_end_of_the_window_applies_again() {
        let t0 = Instant::now();
        let mut set = FollowSet::new([true], WINDOW);
        assert_eq!(set.read_at(), None);
        set.follow(0, "TS-1", Seen::of(&missing("TS-1")), t0);
        assert_eq!(set.read_at(), Some(t0 + READ_INTERVAL));

        // Not committed yet: the same as seen, nothing to apply.
        assert_eq!(set.start_read(t0 + READ_INTERVAL), vec![(0, vec!["TS-1".to_string()])]);
        assert_eq!(set.read_at(), None, "one read at a time");
        assert!(set.on_read(0, vec![missing("TS-1")]).is_empty());
        set.end_read(t0 + READ_INTERVAL);
        assert_eq!(set.read_at(), Some(t0 + 2 * READ_INTERVAL));

        // Committed: applied once, not again while it stays so.
        set.start_read(t0 + 2 * READ_INTERVAL);
        assert_eq!(ids(&set.on_read(0, vec![runs("TS-1", "* * * * *")])), vec!["TS-1"]);
        set.end_read(t0 + 2 * READ_INTERVAL);
        set.start_read(t0 + 3 * READ_INTERVAL);
        assert!(set.on_read(0, vec![runs("TS-1", "* * * * *")]).is_empty());
        // Edited again within the window: applied again.
        assert_eq!(ids(&set.on_read(0, vec![runs("TS-1", "*/2 * * * *")])), vec!["TS-1"]);
        set.end_read(t0 + 3 * READ_INTERVAL);

        // The window's end: applied once more, then no longer followed.
        set.start_read(t0 + WINDOW);
        let applied = set.on_read(0, vec![runs("TS-1", "*/2 * * * *")]);
        assert_eq!((ids(&applied), applied[0].1), (vec!["TS-1"], Because::WindowEnded));
        set.end_read(t0 + WINDOW);
        assert_eq!((set.len(), set.read_at()), (0, None));
    }

    #[test]
    fn a_new_request_restarts_the_window_and_ignores_older_reads() {
        let t0 = Instant::now();
        let mut set = FollowSet::new([true], WINDOW);
        set.follow(0, "TS-1", Seen::of(&runs("TS-1", "0 * * * *")), t0);
        let later = t0 + WINDOW - READ_INTERVAL;
        set.start_read(later);
        // The request again, while that read runs: its row may predate the request's.
        set.follow(0, "TS-1", Seen::of(&runs("TS-1", "5 * * * *")), later);
        assert!(set.on_read(0, vec![runs("TS-1", "0 * * * *")]).is_empty());
        set.end_read(later);
        // Past the first window's end, still followed (restarted), and unchanged.
        set.start_read(t0 + WINDOW + READ_INTERVAL);
        assert!(set.on_read(0, vec![runs("TS-1", "5 * * * *")]).is_empty());
        set.end_read(t0 + WINDOW + READ_INTERVAL);
        assert_eq!(set.len(), 1);
        set.start_read(later + WINDOW);
        assert_eq!(ids(&set.on_read(0, vec![runs("TS-1", "5 * * * *")])), vec!["TS-1"]);
    }

    #[test]
    fn sites_are_followed_apart_and_file_sites_not_at_all() {
        let t0 = Instant::now();
        let mut set = FollowSet::new([true, false, true], WINDOW);
        assert!(set.follows(0) && !set.follows(1) && set.follows(2));
        for idx in 0..3 {
            set.follow(idx, "TS-1", Seen::of(&missing("TS-1")), t0);
        }
        set.follow(2, "TS-2", Seen::Unread, t0);
        assert_eq!(set.len(), 3);
        let reads = set.start_read(t0 + READ_INTERVAL);
        assert_eq!(reads, vec![(0, vec!["TS-1".into()]), (2, vec!["TS-1".into(), "TS-2".into()])]);
        // Site 0's database has it now; site 2's does not. An unread site's first read differs.
        let applied = set.on_read(0, vec![runs("TS-1", "* * * * *")]);
        assert_eq!((ids(&applied), applied[0].1), (vec!["TS-1"], Because::Changed));
        assert_eq!(ids(&set.on_read(2, vec![missing("TS-1"), missing("TS-2")])), vec!["TS-2"]);
        // A row nobody follows (or of a site that follows nothing) is ignored.
        assert!(set.on_read(1, vec![runs("TS-1", "* * * * *")]).is_empty());
        assert!(set.on_read(0, vec![runs("TS-9", "* * * * *")]).is_empty());
    }

    #[test]
    fn a_failing_site_is_reported_once_and_keeps_its_follows() {
        let t0 = Instant::now();
        let mut set = FollowSet::new([true], WINDOW);
        set.follow(0, "TS-1", Seen::of(&missing("TS-1")), t0);
        for n in 1..4u32 {
            set.start_read(t0 + WINDOW * n);
            assert_eq!(set.read_failed(0), n == 1);
            set.end_read(t0 + WINDOW * n);
        }
        assert_eq!(set.len(), 1, "past its window, still followed until a read succeeds");
        set.start_read(t0 + WINDOW * 4);
        assert_eq!(ids(&set.on_read(0, vec![missing("TS-1")])), vec!["TS-1"]);
        assert!(!set.read_failed(7), "an unknown site is no failure to report");
    }

    #[test]
    fn a_zero_window_follows_nothing() {
        let mut set = FollowSet::new([true], Duration::ZERO);
        set.follow(0, "TS-1", Seen::Unread, Instant::now());
        assert_eq!((set.len(), set.read_at()), (0, None));
    }
}
