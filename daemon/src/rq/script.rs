//! The enqueue script: claim, gates, job hash and queue push of a whole batch of runs in one
//! server-side step ([`super::RqWriter::enqueue_many`] calls it).

use redis::Script;
use std::sync::LazyLock;

/// Claim, check, write and push a batch of runs in one server-side step, so that a run is
/// decided exactly once even with two daemons, a crash between commands, or a rebuild racing
/// the timer (`docs/rq.md` W1: push before hash loses the job). One call per batch, not per
/// run: Redis runs scripts one after another, and the per-call cost (EVALSHA dispatch, Lua
/// set-up) used to be most of the ~40 µs each run cost.
///
/// KEYS: 1 `rq:queues`, then per run: claim, job hash, queue list, pause, skip ZSET, last job
///       (the last three are `''` when the run has no such gate)
/// ARGV: 1 enqueued_at, 2 number of runs, 3 key prefix, 4 now (unix seconds, the canceled
///       registry's score), then per run: job id, claim ttl, due (unix seconds, the skip
///       member), overlap (`allow|skip|replace`), n = number of field/value strings, the n
///       strings
///
/// Type checks come first, before the run writes anything: once per batch `rq:queues` must
/// be a set; once per queue of the batch the queue must be a list or absent; per run the skip
/// key a zset, and, when the overlap policy reads it, the last-job key a string, the previous
/// job's key a hash and (for `replace`) its queue a list and its canceled registry a zset.
/// Redis does not roll back a script that fails half-way, so a run with a key of another type
/// gets the WRONGTYPE text as its answer and nothing of it is written — the other runs of the
/// batch are unaffected.
///
/// Per run, in this order (none of the writes can fail on type):
/// 1. an existing job hash answers 0: same id = same run, even if its claim expired;
/// 2. `SET claim NX EX ttl` (SET ignores the type of a key it finds); taken answers 0,
///    nothing written. From here on the run is decided by this call alone: a second daemon
///    finds the claim and answers 0, whatever the gates say by then;
/// 3. pause key exists → 2 (skipped_paused);
/// 4. `ZREM skip <due>` removed it → 3 (skipped_by_request);
/// 5. overlap `skip` and the previous job's status is queued, deferred, scheduled or started
///    → `{4, previous id}` (skipped_overlap);
/// 6. overlap `replace` and the previous job's status is queued: `LREM` it from its queue (or
///    from this batch's push list); if it was there, `HSET status canceled` and `ZADD
///    <prefix>:canceled:<origin> now id` (what `Job.cancel()` writes on rq 1.15, 2.6 and 3.0)
///    → the run is enqueued and answers `{5, previous id}` (replaced). A job a worker has
///    already taken (started, or between queue and start) is left alone;
/// 7. `HSET` every field plus `enqueued_at` into the hash that step 1 found absent, the id
///    joins its queue's push list and `SET lastjob <id>`; answers 1 (or `{5, …}`).
///
/// The previous job's keys are derived inside the script (from the last-job key's value and
/// its hash's `origin`): one Redis server holds them all, as rq itself requires.
///
/// Then one `RPUSH` per queue (in slices: Lua's `unpack` has a stack limit) and one `SADD
/// rq:queues`. Pushing at the end is as atomic as pushing per run — no client sees a script
/// half-done, so no worker can pop an id before its hash exists — and nothing can fail after
/// the type checks, since Redis lets a script that has already written go on even past
/// `maxmemory` (and refuses SCRIPT KILL for it).
///
/// The schedule history is NOT written here: it is a pipelined follow-up
/// ([`super::RqWriter::append_history`]) after the script answered, which halves the Redis
/// time per run. A crash between the two loses a history entry, never a run (docs/rq.md,
/// "History outside the atomic step").
const ENQUEUE_LUA: &str = r#"
local queues, stamp, runs, prefix, now = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local function wrong(key, kind)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= kind then
    return 'WRONGTYPE ' .. key .. ' is a ' .. t .. ', expected a ' .. kind
  end
  return false
end
local busy = {queued = true, deferred = true, scheduled = true, started = true}
local queues_err = wrong(queues, 'set')
local ids, order, out, pending = {}, {}, {}, {}
local k, a = 2, 5
for r = 1, runs do
  local id, ttl, due, overlap, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local claim, job, queue = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local pause, skip, last = KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local err = queues_err
  if not err and not ids[queue] then
    err = wrong(queue, 'list')
    if not err then
      ids[queue] = {}
      order[#order + 1] = queue
    end
  end
  if not err and skip ~= '' then err = wrong(skip, 'zset') end
  local prev, prev_job, prev_status, prev_origin
  if not err and overlap ~= 'allow' and last ~= '' then
    err = wrong(last, 'string')
    if not err then prev = redis.call('GET', last) end
    if prev then
      prev_job = prefix .. ':job:' .. prev
      err = wrong(prev_job, 'hash')
      if not err then
        local f = redis.call('HMGET', prev_job, 'status', 'origin')
        prev_status, prev_origin = f[1], f[2]
      end
    end
  end
  local cancel = not err and overlap == 'replace' and prev_status == 'queued' and prev_origin
  if cancel then
    err = wrong(prefix .. ':queue:' .. prev_origin, 'list') or wrong(prefix .. ':canceled:' .. prev_origin, 'zset')
  end
  if err then
    out[r] = err
  elseif redis.call('EXISTS', job) == 1 then
    out[r] = 0
  elseif not redis.call('SET', claim, id, 'NX', 'EX', ttl) then
    out[r] = 0
  elseif pause ~= '' and redis.call('EXISTS', pause) == 1 then
    out[r] = 2
  elseif skip ~= '' and redis.call('ZREM', skip, due) == 1 then
    out[r] = 3
  elseif overlap == 'skip' and prev_status and busy[prev_status] then
    out[r] = {4, prev}
  else
    out[r] = 1
    if cancel then
      local removed = redis.call('LREM', prefix .. ':queue:' .. prev_origin, 1, prev)
      local held = pending[prev]
      if removed == 0 and held then
        -- enqueued earlier in this batch, not pushed yet
        for i = #held, 1, -1 do
          if held[i] == prev then
            table.remove(held, i)
            removed = 1
            break
          end
        end
      end
      if removed > 0 then
        redis.call('HSET', prev_job, 'status', 'canceled')
        redis.call('ZADD', prefix .. ':canceled:' .. prev_origin, now, prev)
        out[r] = {5, prev}
      end
    end
    redis.call('HSET', job, 'enqueued_at', stamp, unpack(ARGV, a + 5, a + 4 + n))
    local q = ids[queue]
    q[#q + 1] = id
    pending[id] = q
    if last ~= '' then redis.call('SET', last, id) end
  end
  k, a = k + 6, a + 5 + n
end
for _, queue in ipairs(order) do
  local q = ids[queue]
  for i = 1, #q, 1000 do
    redis.call('RPUSH', queue, unpack(q, i, math.min(i + 999, #q)))
  end
  if #q > 0 then redis.call('SADD', queues, queue) end
end
return out
"#;

pub(super) static ENQUEUE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ENQUEUE_LUA));
