//! The row sink: where a rebuild load sends its rows, in batches, to the engine.

use super::row::RebuildRow;

/// Rows per batch a rebuild load sends to the engine.
const SINK_BATCH: usize = 1024;

/// Where a rebuild load sends its rows: batches of [`SINK_BATCH`] through a bounded channel
/// to the engine, which applies each batch as it arrives. However many rows a source has,
/// only the few batches in flight exist beside the plan (when every schedule changed, a
/// loaded `Vec` of all rows would double the plan's memory).
#[derive(Debug)]
pub struct RowSink {
    /// The engine's index of the site, sent with each batch.
    site: usize,
    tx: tokio::sync::mpsc::Sender<(usize, Vec<RebuildRow>)>,
    batch: Vec<RebuildRow>,
}

impl RowSink {
    pub fn new(site: usize, tx: tokio::sync::mpsc::Sender<(usize, Vec<RebuildRow>)>) -> Self {
        RowSink { site, tx, batch: Vec::with_capacity(SINK_BATCH) }
    }

    /// Adds a row; sends the batch when it is full. `false` once the engine is gone (stop
    /// reading).
    pub async fn push(&mut self, row: RebuildRow) -> bool {
        self.batch.push(row);
        if self.batch.len() < SINK_BATCH {
            return true;
        }
        self.flush().await
    }

    /// Sends what is left. `false` once the engine is gone.
    pub async fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(SINK_BATCH));
        self.tx.send((self.site, batch)).await.is_ok()
    }
}
