//! [`Coalescer`]: single-id reads of one source, coalesced. A read asked for while another is
//! in flight waits; when that read returns, every id that waited is read together by ONE
//! batch read, and each caller gets its own answer from it.
//!
//! Why: a notify re-reads its schedule from the site's database. One query per notify kept
//! MariaDB's per-query cost (parse, plan, round trip) on every notify and let eight busy
//! connections take eight database connections; coalesced, concurrent notifies of a site
//! share one `IN (...)` query and at most one connection.
//!
//! There is no waiting window: a read asked for while none runs starts at once, alone, in
//! the caller's own task, so a lone notify pays nothing (the batch forms only from what
//! arrives during a read). The batches after it run in a spawned task, so a caller that goes
//! away (its client hung up) never strands the callers queued behind it; a batch read that
//! ends without answering (a panic, the runtime stopping) answers [`BatchError::Lost`] to
//! each of its callers rather than leaving them waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// Most distinct ids one batch read names; callers beyond it wait for the next read.
pub const MAX_BATCH: usize = 512;

/// Why a coalesced read has no answer for a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError<E> {
    /// The batch read failed: every caller of the batch gets its error.
    #[error(transparent)]
    Read(E),
    /// The batch read answered `got` values for `asked` ids (a broken reader).
    #[error("the batch read answered {got} values for {asked} ids")]
    Short { asked: usize, got: usize },
    /// The batch read stopped before answering (it panicked, or the runtime is stopping).
    #[error("the batch read stopped before answering")]
    Lost,
}

type Reply<T, E> = oneshot::Sender<Result<T, BatchError<E>>>;

/// The reads of one source. Clones share the queue (the engine hands clones of a source to
/// every connection's task).
pub struct Coalescer<T, E> {
    state: Arc<Mutex<State<T, E>>>,
}

struct State<T, E> {
    /// A batch task is running (it will take what is queued before it ends).
    reading: bool,
    /// Callers waiting for the next batch, in arrival order.
    queued: Vec<(String, Reply<T, E>)>,
}

impl<T, E> Clone for Coalescer<T, E> {
    fn clone(&self) -> Self {
        Coalescer { state: self.state.clone() }
    }
}

impl<T, E> Default for Coalescer<T, E> {
    fn default() -> Self {
        Coalescer { state: Arc::new(Mutex::new(State { reading: false, queued: Vec::new() })) }
    }
}

impl<T, E> std::fmt::Debug for Coalescer<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Coalescer").field("reading", &state.reading).field("queued", &state.queued.len()).finish()
    }
}

fn lock<T, E>(state: &Mutex<State<T, E>>) -> MutexGuard<'_, State<T, E>> {
    // Nothing panics while holding the lock; a poisoned one still holds a consistent state.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T, E> Coalescer<T, E>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    pub fn new() -> Self {
        Coalescer::default()
    }

    /// The answer for `id`: read by `read` alone, in this task, when no read is in flight;
    /// else together with every id that arrives before the read in flight returns. `read`
    /// gets distinct ids (in arrival order) and must answer one value per id, in the same
    /// order; the caller that read alone hands it to the batch task that reads what queued
    /// meanwhile.
    pub async fn get<F, Fut>(&self, id: &str, mut read: F) -> Result<T, BatchError<E>>
    where
        F: FnMut(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<T>, E>> + Send + 'static,
    {
        let answer = {
            let mut state = lock(&self.state);
            if state.reading {
                let (reply, answer) = oneshot::channel();
                state.queued.push((id.to_string(), reply));
                Some(answer)
            } else {
                state.reading = true;
                None
            }
        };
        if let Some(answer) = answer {
            return answer.await.unwrap_or(Err(BatchError::Lost));
        }
        // Alone: read here, without a task hop (a lone notify pays nothing for coalescing).
        // However this ends (answered, or dropped because the client hung up), `Leading`
        // hands what queued meanwhile to a batch task.
        let fut = read(vec![id.to_string()]);
        let state = self.state.clone();
        let hand_off: HandOff<'_> = Box::new(move |runtime| {
            runtime.spawn(drive(state, read));
        });
        let _lead = Leading { state: &self.state, hand_off: Some(hand_off) };
        match fut.await {
            Ok(mut values) if values.len() == 1 => values.pop().ok_or(BatchError::Lost),
            Ok(values) => Err(BatchError::Short { asked: 1, got: values.len() }),
            Err(e) => Err(BatchError::Read(e)),
        }
    }
}

/// A batch task to start (it owns the reader the lone caller was given).
type HandOff<'a> = Box<dyn FnOnce(&tokio::runtime::Handle) + Send + 'a>;

/// The caller reading alone: when it is done (or dropped), the callers that queued during
/// its read get a batch task, or the state says no read is in flight.
struct Leading<'a, T, E> {
    state: &'a Mutex<State<T, E>>,
    hand_off: Option<HandOff<'a>>,
}

impl<T, E> Drop for Leading<'_, T, E> {
    fn drop(&mut self) {
        let mut state = lock(self.state);
        if state.queued.is_empty() {
            state.reading = false;
            return;
        }
        match (self.hand_off.take(), tokio::runtime::Handle::try_current()) {
            (Some(hand_off), Ok(runtime)) => {
                drop(state);
                hand_off(&runtime);
            }
            // No runtime to run the batch on (it is shutting down): the queued callers get
            // `Lost` rather than waiting forever.
            _ => {
                state.reading = false;
                state.queued.clear();
            }
        }
    }
}

/// The batch task: reads what is queued, answers, and repeats until nothing waits.
async fn drive<T, E, F, Fut>(state: Arc<Mutex<State<T, E>>>, mut read: F)
where
    T: Clone,
    E: Clone,
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<T>, E>>,
{
    let mut guard = Driving { state: &state, done: false };
    loop {
        let batch = {
            let mut st = lock(&state);
            if st.queued.is_empty() {
                // Under the lock: a caller arriving after this starts a task of its own.
                st.reading = false;
                guard.done = true;
                return;
            }
            let take = distinct_prefix(&st.queued, MAX_BATCH);
            st.queued.drain(..take).collect::<Vec<_>>()
        };
        answer(batch, &mut read).await;
    }
}

/// How many queued callers (from the front) name at most `max` distinct ids.
fn distinct_prefix<T, E>(queued: &[(String, Reply<T, E>)], max: usize) -> usize {
    let mut seen = std::collections::HashSet::new();
    for (n, (id, _)) in queued.iter().enumerate() {
        if seen.insert(id.as_str()) && seen.len() > max {
            return n;
        }
    }
    queued.len()
}

/// One batch read for `batch`'s distinct ids; each caller gets the value of its id (callers
/// of the same id each get it) or the read's error.
async fn answer<T, E, F, Fut>(batch: Vec<(String, Reply<T, E>)>, read: &mut F)
where
    T: Clone,
    E: Clone,
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<T>, E>>,
{
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    let mut ids = Vec::with_capacity(batch.len());
    // Per distinct id, how many callers still want it: the last one gets the value itself.
    let mut wanted: Vec<usize> = Vec::with_capacity(batch.len());
    let slots: Vec<usize> = batch
        .iter()
        .map(|(id, _)| {
            let slot = *index.entry(id.as_str()).or_insert_with(|| {
                ids.push(id.clone());
                wanted.push(0);
                ids.len() - 1
            });
            wanted[slot] += 1;
            slot
        })
        .collect();
    let asked = ids.len();
    let values = match read(ids).await {
        Ok(values) if values.len() == asked => values,
        Ok(values) => return reply_all(batch, BatchError::Short { asked, got: values.len() }),
        Err(e) => return reply_all(batch, BatchError::Read(e)),
    };
    let mut values: Vec<Option<T>> = values.into_iter().map(Some).collect();
    for ((_, reply), slot) in batch.into_iter().zip(slots) {
        wanted[slot] -= 1;
        let value = if wanted[slot] == 0 { values[slot].take() } else { values[slot].clone() };
        // Err: the caller went away; nothing to answer.
        let _ = reply.send(value.ok_or(BatchError::Lost));
    }
}

fn reply_all<T, E: Clone>(batch: Vec<(String, Reply<T, E>)>, err: BatchError<E>) {
    for (_, reply) in batch {
        let _ = reply.send(Err(err.clone()));
    }
}

/// Leaves the state usable when the batch task ends without finishing (a panic in a read,
/// or the task dropped at shutdown): no read is in flight any more, and the callers still
/// queued are dropped, so each gets [`BatchError::Lost`] instead of waiting forever.
struct Driving<'a, T, E> {
    state: &'a Mutex<State<T, E>>,
    done: bool,
}

impl<T, E> Drop for Driving<'_, T, E> {
    fn drop(&mut self) {
        if !self.done {
            let mut state = lock(self.state);
            state.reading = false;
            state.queued.clear();
        }
    }
}

#[cfg(test)]
#[path = "coalesce_tests.rs"]
mod tests;
