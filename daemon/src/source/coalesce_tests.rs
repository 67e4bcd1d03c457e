//! The coalescer's contract: a lone read starts at once; reads that arrive while one is in
//! flight are read together in one batch; each caller gets its own answer (duplicates too);
//! an error reaches every caller of its batch; nothing is left waiting. (A lone read runs in
//! its caller's task, so a panic there is that caller's, as with a direct read.)

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;

type Calls = Arc<Mutex<Vec<Vec<String>>>>;
type ReadFuture = std::pin::Pin<Box<dyn Future<Output = Result<Vec<String>, String>> + Send>>;

/// A reader that records each batch, waits for a permit of `gate` per batch, and answers
/// `row:<id>` (or an error for batch number `fail_batch`).
fn reader(
    calls: &Calls,
    gate: &Arc<Semaphore>,
    fail_batch: Option<usize>,
) -> impl FnMut(Vec<String>) -> ReadFuture + Send + 'static {
    let (calls, gate) = (calls.clone(), gate.clone());
    move |ids: Vec<String>| {
        let batch = {
            let mut calls = calls.lock().unwrap_or_else(PoisonError::into_inner);
            calls.push(ids.clone());
            calls.len() - 1
        };
        let gate = gate.clone();
        Box::pin(async move {
            gate.acquire().await.map_err(|e| e.to_string())?.forget();
            if fail_batch == Some(batch) {
                return Err(format!("batch {batch} failed"));
            }
            Ok(ids.iter().map(|id| format!("row:{id}")).collect())
        })
    }
}

fn recorded(calls: &Calls) -> Vec<Vec<String>> {
    calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// `c.get(id, read)` in a task of its own.
fn spawn_get<F>(
    c: &Coalescer<String, String>,
    id: &'static str,
    read: F,
) -> JoinHandle<Result<String, BatchError<String>>>
where
    F: FnMut(Vec<String>) -> ReadFuture + Send + 'static,
{
    let c = c.clone();
    tokio::spawn(async move { c.get(id, read).await })
}

/// Lets the spawned batch task run until it waits on its gate.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_lone_read_starts_at_once_alone() {
    let (calls, gate) = (Calls::default(), Arc::new(Semaphore::new(100)));
    let c = Coalescer::<String, String>::new();
    let t0 = Instant::now();
    assert_eq!(c.get("TS-1", reader(&calls, &gate, None)).await, Ok("row:TS-1".to_string()));
    // The clock is paused and auto-advances only when something sleeps: no waiting window.
    assert_eq!(Instant::now(), t0);
    assert_eq!(recorded(&calls), vec![vec!["TS-1".to_string()]]);
    // And again: the task ended, the next lone read is its own batch.
    assert_eq!(c.get("TS-2", reader(&calls, &gate, None)).await, Ok("row:TS-2".to_string()));
    assert_eq!(recorded(&calls).len(), 2);
    assert_eq!(Instant::now(), t0);
}

#[tokio::test]
async fn reads_during_a_read_share_one_batch_in_arrival_order_and_duplicates_are_each_answered() {
    let (calls, gate) = (Calls::default(), Arc::new(Semaphore::new(0)));
    let c = Coalescer::<String, String>::new();
    let first = spawn_get(&c, "A", reader(&calls, &gate, None));
    settle().await;
    assert_eq!(recorded(&calls), vec![vec!["A".to_string()]], "the first read runs alone");
    let ids = ["C", "B", "C", "A", "D", "B"];
    let waiting: Vec<_> = ids
        .iter()
        .map(|id| {
            let (c, r, id) = (c.clone(), reader(&calls, &gate, None), id.to_string());
            tokio::spawn(async move { (id.clone(), c.get(&id, r).await) })
        })
        .collect();
    settle().await;
    assert_eq!(recorded(&calls).len(), 1, "nothing else is read while the first read runs");
    gate.add_permits(2);
    assert_eq!(first.await.expect("join"), Ok("row:A".to_string()));
    for task in waiting {
        let (id, got) = task.await.expect("join");
        assert_eq!(got, Ok(format!("row:{id}")));
    }
    let batches = recorded(&calls);
    assert_eq!(batches.len(), 2, "one batch for all six waiting reads: {batches:?}");
    assert_eq!(batches[1], vec!["C", "B", "A", "D"], "distinct ids, in arrival order");
}

#[tokio::test]
async fn an_error_reaches_every_caller_of_its_batch_and_the_next_read_works() {
    let (calls, gate) = (Calls::default(), Arc::new(Semaphore::new(0)));
    let c = Coalescer::<String, String>::new();
    let first = spawn_get(&c, "A", reader(&calls, &gate, Some(1)));
    settle().await;
    let waiting: Vec<_> = ["B", "C", "B"]
        .iter()
        .map(|id| {
            let (c, r, id) = (c.clone(), reader(&calls, &gate, None), id.to_string());
            tokio::spawn(async move { c.get(&id, r).await })
        })
        .collect();
    settle().await;
    gate.add_permits(2);
    assert_eq!(first.await.expect("join"), Ok("row:A".to_string()));
    for task in waiting {
        assert_eq!(task.await.expect("join"), Err(BatchError::Read("batch 1 failed".to_string())));
    }
    gate.add_permits(1);
    assert_eq!(c.get("B", reader(&calls, &gate, None)).await, Ok("row:B".to_string()));
}

#[tokio::test]
async fn a_caller_that_goes_away_strands_nobody() {
    let (calls, gate) = (Calls::default(), Arc::new(Semaphore::new(0)));
    let c = Coalescer::<String, String>::new();
    let first = spawn_get(&c, "A", reader(&calls, &gate, None));
    settle().await;
    let second = spawn_get(&c, "B", reader(&calls, &gate, None));
    settle().await;
    // The client of the read in flight hangs up: its read is dropped with it, and the
    // caller queued behind it is read by a batch task instead.
    first.abort();
    gate.add_permits(1);
    assert_eq!(second.await.expect("join"), Ok("row:B".to_string()));
    assert_eq!(recorded(&calls), vec![vec!["A".to_string()], vec!["B".to_string()]]);
    // Nothing is in flight any more: the next read is a lone one again.
    gate.add_permits(1);
    assert_eq!(c.get("C", reader(&calls, &gate, None)).await, Ok("row:C".to_string()));
}

#[tokio::test]
async fn a_batch_read_that_panics_or_answers_short_gives_typed_errors_and_the_next_read_works() {
    let c = Coalescer::<String, String>::new();
    let gate = Arc::new(Semaphore::new(0));
    // A reader whose first (lone) read waits for the gate and whose batch read panics.
    let reader = {
        let gate = gate.clone();
        let mut n = 0;
        move |ids: Vec<String>| {
            n += 1;
            let (gate, batch) = (gate.clone(), n);
            async move {
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
                assert_eq!(batch, 1, "a reader bug");
                Ok::<_, String>(ids)
            }
        }
    };
    let first = tokio::spawn({
        let c = c.clone();
        async move { c.get("A", reader).await }
    });
    settle().await;
    let queued = tokio::spawn({
        let c = c.clone();
        async move { c.get("B", |ids: Vec<String>| async move { Ok::<_, String>(ids) }).await }
    });
    settle().await;
    gate.add_permits(2);
    assert_eq!(first.await.expect("join"), Ok("A".to_string()));
    assert_eq!(queued.await.expect("join"), Err(BatchError::Lost));

    let short = |_ids: Vec<String>| async move { Ok::<_, String>(Vec::<String>::new()) };
    assert_eq!(c.get("A", short).await, Err(BatchError::Short { asked: 1, got: 0 }));
    let ok = |ids: Vec<String>| async move { Ok::<_, String>(ids) };
    assert_eq!(c.get("A", ok).await, Ok("A".to_string()));
}

#[test]
fn a_batch_names_at_most_max_distinct_ids() {
    let queued: Vec<(String, Reply<String, String>)> =
        ["a", "b", "a", "c", "b", "d"].iter().map(|id| (id.to_string(), oneshot::channel().0)).collect();
    assert_eq!(distinct_prefix(&queued, 2), 3, "a b a, then c would be a third");
    assert_eq!(distinct_prefix(&queued, 3), 5);
    assert_eq!(distinct_prefix(&queued, 4), 6);
}
