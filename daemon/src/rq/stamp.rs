//! The `enqueued_at` stamp, taken inside the Lua scripts from Redis' own clock at the moment
//! the jobs are written (`redis.call('TIME')`), in the one form every rq parses
//! (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, `docs/rq.md` W3) — the same text [`super::rq_timestamp`]
//! makes in Rust. Stamping in the script (not in the daemon before the call) makes it the time
//! a worker could first see the job, whatever the queueing before the script ran.

/// Lua: `rq_stamp(secs, usecs)` formats a Unix time (UTC) as rq's timestamp (days to civil
/// date as in H. Hinnant's `civil_from_days`; Lua 5.1 numbers are doubles, exact for these
/// integers), and `rq_now()` stamps Redis' `TIME`. Prepended to the scripts that use it.
pub const STAMP_LUA: &str = r#"
local function rq_stamp(secs, usec)
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', y, m, d,
    math.floor(rem / 3600), math.floor((rem % 3600) / 60), rem % 60, usec)
end
local function rq_now()
  local t = redis.call('TIME')
  return rq_stamp(tonumber(t[1]), tonumber(t[2]))
end
"#;
