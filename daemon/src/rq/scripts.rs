//! The Lua scripts that write runs into Redis (`docs/rq.md`, "The claim script", "Gates" and
//! "Staging"):
//! stage a run's job hash and claim ahead of its instant, and at the instant release it
//! (status, `enqueued_at`, push) or, for a run nobody staged, claim + write + push in full.
//! Redis runs each script call as one atomic step; each call carries a whole batch of runs.

use std::sync::LazyLock;

use redis::Script;

use super::stamp::STAMP_LUA;

/// What tells a staged job hash (written ahead, in no queue or registry, not released yet)
/// from any other: it has no `enqueued_at`. Staging writes every other field as the job will
/// have it (`status` queued); every release and every full write sets `enqueued_at` (Redis'
/// clock when the job is written), and no rq release removes it. So the release at the
/// instant needs one `HSETNX enqueued_at` per run — set: released now; already there:
/// released before — instead of reading the status and then writing it (`docs/rq.md`,
/// "Staging").
///
/// `job_state(job)`: the error of a key of another type, or nil, the hash's `status` and
/// whether it is staged.
const STAGED_LUA: &str = r#"
local function job_state(job)
  local f = redis.pcall('HMGET', job, 'status', 'enqueued_at')
  if f.err then return f end
  return nil, f[1], f[1] ~= false and f[2] == false
end
"#;

/// Shared by the enqueue and release script: type checks, the gates, and the write or
/// release of a run.
///
/// KEYS: 1 `rq:queues`, then per gate index (the sites' [`super::GateIndex`]): its pauses and
///       skips sets, then the script's own keys
/// ARGV: 1 key prefix, 2 number of runs, 3 number of gate indexes, then per index the pause,
///       skip and last-job key prefixes, then the script's own arguments.
///
/// The gate indexes are read once per call (`SMEMBERS`): a run with `ix` = `1` has its pause
/// and skip keys looked at (type check, `EXISTS`, `ZREM`) only when its schedule is a member,
/// which spares three calls per run when nothing is paused or skipped. An index of another
/// type marks nothing and every key is looked at.
///
/// Type checks come first, before the run writes anything: once per batch `rq:queues` must
/// be a set; once per queue of the batch the queue must be a list or absent; per run the job
/// key a hash (read with `pcall`), the skip key a zset, and, when the overlap policy reads it,
/// the last-job key a string, the previous job's key a hash and (for `replace`) its queue a
/// list and its canceled registry a zset. Redis does not roll back a script that fails
/// half-way, so a run with a key of another type gets the WRONGTYPE text as its answer and
/// nothing of it is written — the other runs of the batch are unaffected.
///
/// `decide(...)` runs once the run is claimed by this call (a fresh claim, or a hash found
/// still staged, [`STAGED_LUA`]: the claim was taken when it was staged, and the release
/// decides it): pause key exists → 2 (skipped_paused); `ZREM skip <due>` removed it → 3
/// (skipped_by_request); overlap `skip` and the previous job's status is queued, deferred,
/// scheduled or started → `{4, previous id}` (skipped_overlap) — a skipped staged hash is
/// deleted (its claim stays: decided); else overlap `replace` cancels a previous job still
/// queued (`LREM` from its queue or from this batch's push list, `HSET status canceled`,
/// `ZADD <prefix>:canceled:<origin> now id`, what `Job.cancel()` writes on rq 1.15, 2.6 and
/// 3.0) → `{5, previous id}` (replaced), and the run is written (fresh: `HSET` every field +
/// `enqueued_at`) or released (staged: `status` queued, `enqueued_at`, `PERSIST` — which the
/// release script leaves to its caller, [`PERSIST_AFTER`]), its id
/// joins its queue's push list and it becomes its schedule's last job → 1 (or `{5, …}`).
///
/// The last jobs are written at the end of the call with one `MSET` (a later run of the same
/// call reads the value this call gave, from a table): one command per call instead of a `SET`
/// per run.
///
/// `enqueued_at` and the canceled registry's score are Redis' clock when the script runs
/// (`TIME`, once per call: the batch is one atomic step).
///
/// Then the `MSET` of the last jobs and one `RPUSH` per queue (in slices: Lua's `unpack` has a stack limit) and one `SADD
/// rq:queues`. Pushing at the end is as atomic as pushing per run — no client sees a script
/// half-done, so no worker can pop an id before its hash exists — and nothing can fail after
/// the type checks, since Redis lets a script that has already written go on even past
/// `maxmemory` (and refuses SCRIPT KILL for it).
const COMMON_LUA: &str = r#"
local prefix, queues, runs = ARGV[1], KEYS[1], tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = clock[1]
local stamp = rq_stamp(tonumber(clock[1]), tonumber(clock[2]))
local function wrong(key, kind)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= kind then
    return 'WRONGTYPE ' .. key .. ' is a ' .. t .. ', expected a ' .. kind
  end
  return false
end
local busy = {queued = true, deferred = true, scheduled = true, started = true}
local queues_err = wrong(queues, 'set')
local nidx = tonumber(ARGV[3])
-- marked: the pause and skip keys of the indexed schedules; members[i][0|1]: index i's
-- paused and skipped schedules (for the release, which derives the keys from them)
local marked, members, unindexed = {}, {}, false
for i = 1, nidx do
  members[i] = {}
  for j = 0, 1 do
    local key, keyprefix = KEYS[2 * i + j], ARGV[1 + 3 * i + j]
    local set = {}
    members[i][j] = set
    if wrong(key, 'set') then
      unindexed = true
    else
      for _, m in ipairs(redis.call('SMEMBERS', key)) do
        marked[keyprefix .. m] = true
        set[m] = true
      end
    end
  end
end
-- Whether a run's pause or skip key is to be looked at.
local function gated(key, ix)
  return key ~= '' and (ix ~= '1' or unindexed or marked[key] == true)
end
local ids, order, out, pending = {}, {}, {}, {}
-- the last job this call gave each last-job key, written by finish()
local lastset, lastorder = {}, {}
-- Type checks of one run; answers the WRONGTYPE text, or false and what the gates need.
-- The queue's push list, opened by its type check; or the WRONGTYPE text.
local function open(queue)
  if queues_err then return nil, queues_err end
  local q = ids[queue]
  if not q then
    local err = wrong(queue, 'list')
    if err then return nil, err end
    q = {}
    ids[queue] = q
    order[#order + 1] = queue
  end
  return q
end
local function check(queue, job, skip, last, overlap, ix)
  local _, qerr = open(queue)
  if qerr then return qerr end
  local e, st, staged = job_state(job)
  if e then return 'WRONGTYPE ' .. job .. ' is not a hash' end
  if gated(skip, ix) then
    local err = wrong(skip, 'zset')
    if err then return err end
  end
  local g = {status = st, staged = staged, ix = ix}
  if overlap ~= 'allow' and last ~= '' then
    g.prev = lastset[last]
    if not g.prev then
      local err = wrong(last, 'string')
      if err then return err end
      g.prev = redis.call('GET', last)
    end
    if g.prev then
      g.prev_job = prefix .. ':job:' .. g.prev
      local err = wrong(g.prev_job, 'hash')
      if err then return err end
      local f = redis.call('HMGET', g.prev_job, 'status', 'origin')
      g.prev_status, g.prev_origin = f[1], f[2]
    end
  end
  g.cancel = overlap == 'replace' and g.prev_status == 'queued' and g.prev_origin
  if g.cancel then
    local err = wrong(prefix .. ':queue:' .. g.prev_origin, 'list') or wrong(prefix .. ':canceled:' .. g.prev_origin, 'zset')
    if err then return err end
  end
  return false, g
end
-- The staged hash this run's claim names when its own hash is absent (two daemons that see
-- different workers stage the same run under its two id forms): its key, or nil.
local function staged_by_claim(claim)
  local c = redis.pcall('GET', claim)
  if type(c) ~= 'string' then return nil end
  local other = prefix .. ':job:' .. c
  local e, _, staged = job_state(other)
  if not e and staged then return other end
  return nil
end
-- The run's id joins its queue's push list and becomes its schedule's last job. Only a last
-- job of this call can be a later run's `g.prev` still unpushed, so only those go in
-- `pending` (a table insert per run less on the release's fast path, `docs/performance.md`).
local function queued(q, id, last)
  q[#q + 1] = id
  if last ~= '' then
    pending[id] = q
    if not lastset[last] then lastorder[#lastorder + 1] = last end
    lastset[last] = id
  end
end
-- The run is this call's to decide: gates, then write (fields given: a fresh hash) or
-- release (a staged hash; fields given: rewritten first). Answers the run's answer.
local function decide(g, job, id, queue, pause, skip, last, due, overlap, fresh, fields)
  if gated(pause, g.ix) and redis.call('EXISTS', pause) == 1 then
    if not fresh then redis.call('DEL', job) end
    return 2
  end
  if gated(skip, g.ix) and redis.call('ZREM', skip, due) == 1 then
    if not fresh then redis.call('DEL', job) end
    return 3
  end
  if overlap == 'skip' and g.prev_status and busy[g.prev_status] then
    if not fresh then redis.call('DEL', job) end
    return {4, g.prev}
  end
  local answer = 1
  if g.cancel then
    local removed = redis.call('LREM', prefix .. ':queue:' .. g.prev_origin, 1, g.prev)
    local held = pending[g.prev]
    if removed == 0 and held then
      -- enqueued earlier in this batch, not pushed yet
      for i = #held, 1, -1 do
        if held[i] == g.prev then
          table.remove(held, i)
          removed = 1
          break
        end
      end
    end
    if removed > 0 then
      redis.call('HSET', g.prev_job, 'status', 'canceled')
      redis.call('ZADD', prefix .. ':canceled:' .. g.prev_origin, now, g.prev)
      answer = {5, g.prev}
    end
  end
  if fresh then
    redis.call('HSET', job, 'enqueued_at', stamp, unpack(fields))
  else
    if fields then redis.call('HSET', job, unpack(fields)) end
    redis.call('HSET', job, 'status', 'queued', 'enqueued_at', stamp)
    if PERSIST then redis.call('PERSIST', job) end
  end
  queued(ids[queue], id, last)
  return answer
end
-- The answer of a run whose checks were made (`check`): the type error; decided (released) if
-- its hash is staged; 0 if its hash is in another state (decided before); nil if it has no
-- hash, which each script settles its own way.
local function settle(err, g, job, id, queue, pause, skip, last, due, overlap, fields)
  if err then return err end
  if g.staged then return decide(g, job, id, queue, pause, skip, last, due, overlap, false, fields) end
  if g.status then return 0 end
  return nil
end
local function finish()
  local lasts = {}
  for _, key in ipairs(lastorder) do
    lasts[#lasts + 1] = key
    lasts[#lasts + 1] = lastset[key]
  end
  for i = 1, #lasts, 1000 do
    redis.call('MSET', unpack(lasts, i, math.min(i + 999, #lasts)))
  end
  for _, queue in ipairs(order) do
    local q = ids[queue]
    for i = 1, #q, 1000 do
      redis.call('RPUSH', queue, unpack(q, i, math.min(i + 999, #q)))
    end
    if #q > 0 then redis.call('SADD', queues, queue) end
  end
  return out
end
"#;

/// Enqueue (full): per run, release it if it was staged (rewriting its fields with the ones
/// sent, so an edit since the staging wins), else claim + write + push; gates as above.
///
/// KEYS per run: claim, job hash, queue list, pause, skip ZSET, last job (the last three are
/// `''` when the run has no such gate).
/// ARGV per run: job id, claim ttl, due (unix seconds, the skip member), overlap
/// (`allow|skip|replace`), ix, n = number of field/value strings, the n strings (every field
/// but `enqueued_at`).
///
/// Per run after the type checks:
/// 1. own hash staged → decide (release);
/// 2. own hash exists otherwise → 0 (same id = same run, even if its claim expired);
/// 3. the claim names a staged hash (the other id form) → delete it, point the claim at this
///    id and decide the run as a fresh write (its payload carries its own id); the claim is
///    taken otherwise → 0: from the claim on, the run is decided by one call alone, whatever
///    the gates say by then;
/// 4. `SET claim NX EX ttl` → decide (fresh write).
const ENQUEUE_LUA: &str = r#"
local k, a = 2 + 2 * nidx, 4 + 3 * nidx
for r = 1, runs do
  local id, ttl, due, overlap, ix = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local n = tonumber(ARGV[a + 5])
  local claim, job, queue = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local pause, skip, last = KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local fields = {unpack(ARGV, a + 6, a + 5 + n)}
  local err, g = check(queue, job, skip, last, overlap, ix)
  local settled = settle(err, g, job, id, queue, pause, skip, last, due, overlap, fields)
  if settled then
    out[r] = settled
  else
    local other = staged_by_claim(claim)
    if other then
      -- Staged under the other id form: the run moves to this call's id, so that its id and
      -- the id its payload carries (Frappe mode's `job_id` kwarg) agree.
      redis.call('DEL', other)
      redis.call('SET', claim, id, 'EX', ttl)
      out[r] = decide(g, job, id, queue, pause, skip, last, due, overlap, true, fields)
    elseif not redis.call('SET', claim, id, 'NX', 'EX', ttl) then
      out[r] = 0
    else
      out[r] = decide(g, job, id, queue, pause, skip, last, due, overlap, true, fields)
    end
  end
  k, a = k + 6, a + 6 + n
end
return finish()
"#;

/// Release (at the instant, for runs staged ahead): only the release step per run, and as
/// little as possible sent, parsed and answered per run — each string a script takes, and each
/// answer it gives, costs Redis time at the instant (`docs/performance.md`). The job key is
/// derived from the id (`<prefix>:job:<id>`) and the pause, skip and last-job keys from the
/// run's schedule and its index's prefixes; a key is derived only when the script touches it,
/// so this script's keys are not all in KEYS (the daemon does not support Redis Cluster).
///
/// KEYS after the gate indexes: the queue lists of the call.
/// ARGV after the common header: the runs in segments of consecutive runs that share queue,
/// gate index, overlap and due instant: count, queue number, index number (0: none), overlap,
/// due, form, then
/// - form `e` (overlap `allow`, every run's keys derived): the id's head and tail, then per
///   run only the schedule as job ids carry it, escaped (`rq/id.rs`): the id is head +
///   escaped schedule + tail, and a paused or skipped schedule is found by its escaped form;
/// - form `m`: per run the job id and the schedule (its keys derived);
/// - form `k`: per run the job id, pause, skip and last-job key (`''`: none).
///
/// Per run after the type checks: own hash staged → decide (release); own hash in another
/// state → 0; no own hash → 6: the caller enqueues the run in full, whose script finds a run
/// staged under the other id form, or a claim taken, or nothing (it expired, or was removed).
///
/// Answers only the runs whose answer is not 1 (released): their numbers (1-based) and answers,
/// flat (`{r, answer, r, answer, …}`), so the usual burst answers next to nothing.
const RELEASE_LUA: &str = r#"
local qbase, a = 1 + 2 * nidx, 4 + 3 * nidx
local jobs = prefix .. ':job:'
-- A schedule as job ids carry it (rq/id.rs escape_into): every byte outside [A-Za-z0-9] as
-- `_` + two lowercase hex digits.
local function escape(m)
  return (string.gsub(m, '[^A-Za-z0-9]', function(c) return string.format('_%02x', string.byte(c)) end))
end
local function unescape(s)
  return (string.gsub(s, '_(%x%x)', function(h) return string.char(tonumber(h, 16)) end))
end
-- index i's paused (j = 0) or skipped (1) schedules by their escaped form, made on first use
local escaped = {}
local function by_escape(i, j)
  local t = escaped[2 * i + j]
  if not t then
    t = {}
    for m in pairs(members[i][j]) do t[escape(m)] = m end
    escaped[2 * i + j] = t
  end
  return t
end
local function answer(r, value)
  if value ~= 1 then
    out[#out + 1] = r
    out[#out + 1] = value
  end
end
local r = 0
while r < runs do
  local count, queue = tonumber(ARGV[a]), KEYS[qbase + tonumber(ARGV[a + 1])]
  local ixno, overlap, due, form = tonumber(ARGV[a + 2]), ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  a = a + 6
  local ix, pp, sp, lp, paused, skipped, head, tail = '0'
  if ixno > 0 then
    ix, pp, sp, lp = '1', ARGV[1 + 3 * ixno], ARGV[2 + 3 * ixno], ARGV[3 + 3 * ixno]
    paused, skipped = members[ixno][0], members[ixno][1]
  end
  if form == 'e' then
    head, tail = ARGV[a], ARGV[a + 1]
    a = a + 2
    if ixno > 0 then paused, skipped = by_escape(ixno, 0), by_escape(ixno, 1) end
  end
  -- the segment's push list when its runs can take the fast path (nil: a type error)
  local fast = overlap == 'allow' and open(queue)
  -- First the segment's ids, the job keys of its fast runs, in order, and for a run that is
  -- gated (or not `allow`) its pause, skip and last-job key.
  local sids, gates, fastkeys, nfast = {}, {}, {}, 0
  for i = 1, count do
    local id, pause, skip, last = ARGV[a], '', '', ''
    if form == 'e' then
      local s = id
      id = head .. s .. tail
      if unindexed then
        local m = unescape(s)
        pause, skip = pp .. m, sp .. m
      elseif ixno > 0 then
        local m = paused[s]
        if m then pause = pp .. m end
        m = skipped[s]
        if m then skip = sp .. m end
      end
      a = a + 1
    elseif form == 'm' then
      local m = ARGV[a + 1]
      if unindexed or paused[m] then pause = pp .. m end
      if unindexed or skipped[m] then skip = sp .. m end
      if overlap ~= 'allow' then last = lp .. m end
      a = a + 2
    else
      pause, skip = ARGV[a + 1], ARGV[a + 2]
      if overlap ~= 'allow' then last = ARGV[a + 3] end
      a = a + 4
    end
    sids[i] = id
    if fast and pause == '' and skip == '' then
      nfast = nfast + 1
      fastkeys[nfast] = jobs .. id
    else
      gates[i] = {pause, skip, last}
    end
  end
  -- Nothing to gate (the usual run): when every such run's hash exists (one EXISTS for the
  -- segment), its release is one HSETNX of `enqueued_at` (STAGED_LUA): 1 released now, 0
  -- released before, a WRONGTYPE error. A hash missing (expired, removed by a cancel, never
  -- staged) must not be created by it, so then the segment's runs take the checked path.
  local there = 0
  for i = 1, nfast, 1000 do
    there = there + redis.call('EXISTS', unpack(fastkeys, i, math.min(i + 999, nfast)))
  end
  local all_there, f = there == nfast, 0
  for i = 1, count do
    r = r + 1
    local id, gate, job = sids[i], gates[i]
    if not gate then
      f = f + 1
      job = fastkeys[f]
    else
      job = jobs .. id
    end
    if not gate and all_there then
      local set = redis.pcall('HSETNX', job, 'enqueued_at', stamp)
      if set == 1 then
        fast[#fast + 1] = id -- queued(fast, id, ''), inline: no last job to record
      elseif set == 0 then
        answer(r, 0)
      else
        answer(r, 'WRONGTYPE ' .. job .. ' is not a hash')
      end
    else
      local pause, skip, last = '', '', ''
      if gate then pause, skip, last = gate[1], gate[2], gate[3] end
      local err, g = check(queue, job, skip, last, overlap, ix)
      answer(r, settle(err, g, job, id, queue, pause, skip, last, due, overlap, nil) or 6)
    end
  end
end
return finish()
"#;

/// Stage (a few seconds before the instant): the job hash with every field but `enqueued_at`
/// (so it is staged, [`STAGED_LUA`]), expiring with the claim, and the claim — pushed nowhere.
///
/// KEYS: per run: claim, job hash
/// ARGV: 1 number of runs, 2 the least ttl of a staged hash, then per run: job id, ttl, n,
/// the n field/value strings
///
/// Per run: own hash exists (staged by another daemon or an earlier attempt, or enqueued) →
/// 0 (a hash staged by a daemon from before [`STAGED_LUA`], `status` scheduled, gets `status`
/// queued); `SET claim NX EX ttl` taken (staged or enqueued under the other id form) → 0; else
/// `HSET` the fields, `EXPIRE` the hash (ttl, or the least ttl if longer) → 1. Both answers mean "ready for the release".
/// `EXISTS` and `SET` do not care about types and the hash was found absent, so nothing can
/// fail on type here.
const STAGE_LUA: &str = r#"
local runs, least = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
local k, a = 1, 3
for r = 1, runs do
  local id, ttl, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local claim, job = KEYS[k], KEYS[k + 1]
  if redis.call('EXISTS', job) == 1 then
    -- staged by a daemon from before STAGED_LUA (`status` scheduled): made a staged hash of
    -- now, so that its release leaves it queued
    local e, st, staged = job_state(job)
    if not e and staged and st == 'scheduled' then redis.call('HSET', job, 'status', 'queued') end
    out[r] = 0
  elseif not redis.call('SET', claim, id, 'NX', 'EX', ttl) then
    out[r] = 0
  else
    redis.call('HSET', job, unpack(ARGV, a + 3, a + 2 + n))
    redis.call('EXPIRE', job, math.max(tonumber(ttl), least))
    out[r] = 1
  end
  k, a = k + 2, a + 3 + n
end
return out
"#;

/// Unstage (a staged run whose schedule no longer fires at that instant): the hash if it is
/// still staged, and the claim if it names that hash. A released job is never touched.
///
/// KEYS: per run: claim, job hash
/// ARGV: 1 number of runs, then per run: job id
/// Answers the number of staged hashes removed.
const UNSTAGE_LUA: &str = r#"
local removed = 0
for r = 1, tonumber(ARGV[1]) do
  local claim, job, id = KEYS[2 * r - 1], KEYS[2 * r], ARGV[r + 1]
  local e, _, staged = job_state(job)
  if not e and staged then
    redis.call('DEL', job)
    removed = removed + 1
    if redis.call('TYPE', claim)['ok'] == 'string' and redis.call('GET', claim) == id then
      redis.call('DEL', claim)
    end
  end
end
return removed
"#;

fn script(parts: &[&str]) -> Script {
    Script::new(&format!("{STAGED_LUA}{}", parts.concat()))
}

/// Whether `decide` drops a released hash's expiry itself: the enqueue script does; the
/// release script leaves it to the caller's follow-up right after it (`super::release`), so
/// that the instant costs one Redis call per run less.
const PERSIST_HERE: &str = "local PERSIST = true\n";
const PERSIST_AFTER: &str = "local PERSIST = false\n";

pub(crate) static ENQUEUE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[STAMP_LUA, PERSIST_HERE, COMMON_LUA, ENQUEUE_LUA]));
pub(crate) static RELEASE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[STAMP_LUA, PERSIST_AFTER, COMMON_LUA, RELEASE_LUA]));
pub(crate) static STAGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[STAGE_LUA]));
pub(crate) static UNSTAGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[UNSTAGE_LUA]));
