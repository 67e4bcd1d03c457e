//! The re-read of followed schedules ([`super::follow`]): one spawned task per read, one query
//! per site for all of the site's followed ids, the sites read side by side. The engine loop
//! starts a read when the follow set says one is due and gets the rows back here.

use tokio::task::{JoinError, JoinHandle, JoinSet};

use crate::source::{RowOutcome, SourceError, SourceSet};

/// Per site read: its index and its rows, or why it could not be read.
pub(super) type ReadResults = Vec<(usize, Result<Vec<RowOutcome>, SourceError>)>;

pub(super) struct Reread {
    sources: SourceSet,
    task: Option<JoinHandle<ReadResults>>,
}

impl Reread {
    pub fn new(sources: SourceSet) -> Self {
        Reread { sources, task: None }
    }

    /// Reads the ids of each site listed (what [`super::follow::FollowSet::start_read`] gave).
    pub fn start(&mut self, reads: Vec<(usize, Vec<String>)>) {
        let sources = self.sources.snapshot();
        self.task = Some(tokio::spawn(async move {
            let mut set = JoinSet::new();
            for (idx, ids) in reads {
                let sources = sources.clone();
                set.spawn(async move { (idx, sources[idx].load_some(&ids).await) });
            }
            let mut out = Vec::new();
            while let Some(r) = set.join_next().await {
                if let Ok(r) = r {
                    out.push(r);
                }
            }
            out
        }));
    }

    /// The rows of the running read when it ends (pending while none runs).
    pub async fn done(&mut self) -> Result<ReadResults, JoinError> {
        let Some(task) = self.task.as_mut() else { return std::future::pending().await };
        let res = task.await;
        self.task = None;
        res
    }

    /// Stops the running read (shutdown).
    pub fn abort(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
