//! The Lua scripts that make every Redis write atomic on the server, and reads of many
//! rows one consistent server call. Several daemons and plain asebytes 0.3.3 clients may
//! share a group, and the daemon's actor orders only its own clients, so nothing here
//! relies on the daemon for ordering: a write batch is one script, which Redis runs with
//! no other command in between.
//!
//! Layer: inside [`super`] (the Redis backend). Scripts are sent with EVALSHA and, when the
//! server does not know them yet (a restart, `SCRIPT FLUSH`), with EVAL
//! ([`redis::Script`] does that fallback).
//!
//! Both scripts take `KEYS[1]` = `<g>:sort_keys` and `ARGV[1]` = `<g>:row:`, the layout of
//! [`super::layout`]. Sort keys are formatted with `%d`, never `tostring` (which prints
//! `1e+14` for large numbers in Lua 5.1).

use std::sync::LazyLock;

use redis::Script;

/// One write batch, all or nothing.
///
/// `KEYS[2]` = `<g>:next_sk`; `ARGV[2]` = the list length the batch was planned against.
/// If the list has another length now (another writer got in first), nothing is done and
/// the reply is `{0, length}`, so the caller plans the batch again against that length;
/// otherwise the ops run in order and the reply is `{1, new length}`. Positions are
/// 0-based and were checked against the planned length by the daemon, so they are valid
/// here. Ops (`ARGV[3..]`), each a code followed by its arguments; `c` counts field/value
/// pairs, `c = 0` is a placeholder row:
///
/// | code | arguments | effect |
/// |---|---|---|
/// | `E` | `m`, then per row `c` and `c` pairs | append `m` rows |
/// | `I` | `pos c pairs` | insert a row before `pos` (`pos >= len` appends) |
/// | `S` | `pos c pairs` | replace a row |
/// | `U` | `pos c pairs` | merge fields into a row (a placeholder becomes a row) |
/// | `C` | `key m`, then `m` × `pos value` | write one field in several rows |
/// | `D` | `start stop` | delete rows `start..stop` |
/// | `K` | `nk keys… np positions…` (`np = -1`: every row) | remove fields |
/// | `X` | – | remove every row (the counter is kept, so sort keys are never reused) |
pub static WRITE: LazyLock<Script> = LazyLock::new(|| Script::new(WRITE_LUA));

const WRITE_LUA: &str = r#"
local list, counter, prefix = KEYS[1], KEYS[2], ARGV[1]
local n = redis.call('LLEN', list)
if n ~= tonumber(ARGV[2]) then return {0, n} end
local STEP = 4000
local function fmt(x) return string.format('%d', x) end
local function hset(rk, a, c)
  local last = a + 2 * c - 1
  for i = a, last, STEP do
    redis.call('HSET', rk, unpack(ARGV, i, math.min(i + STEP - 1, last)))
  end
end
local function each_chunk(t, fn)
  for i = 1, #t, STEP do fn(unpack(t, i, math.min(i + STEP - 1, #t))) end
end
local function sk_at(pos)
  local sk = redis.call('LINDEX', list, pos)
  if not sk then error('asebytes: no row at position ' .. fmt(pos)) end
  return sk
end
local function sks_at(positions)
  local out = {}
  if #positions <= 8 then
    for j, pos in ipairs(positions) do out[j] = sk_at(pos) end
    return out
  end
  local lo, hi = positions[1], positions[1]
  for _, pos in ipairs(positions) do
    if pos < lo then lo = pos end
    if pos > hi then hi = pos end
  end
  local span = redis.call('LRANGE', list, lo, hi)
  for j, pos in ipairs(positions) do
    out[j] = span[pos - lo + 1]
    if not out[j] then error('asebytes: no row at position ' .. fmt(pos)) end
  end
  return out
end
local p = 3
while p <= #ARGV do
  local op = ARGV[p]
  if op == 'E' then
    local m = tonumber(ARGV[p + 1]); p = p + 2
    local sk0 = redis.call('INCRBY', counter, m) - m
    local sks = {}
    for r = 1, m do
      local sk = fmt(sk0 + r - 1)
      sks[r] = sk
      local c = tonumber(ARGV[p]); p = p + 1
      if c > 0 then hset(prefix .. sk, p, c); p = p + 2 * c end
    end
    each_chunk(sks, function(...) redis.call('RPUSH', list, ...) end)
  elseif op == 'I' then
    local pos, c = tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]); p = p + 3
    local sk = fmt(redis.call('INCR', counter) - 1)
    if c > 0 then hset(prefix .. sk, p, c); p = p + 2 * c end
    local len = redis.call('LLEN', list)
    if pos >= len then
      redis.call('RPUSH', list, sk)
    elseif pos <= 0 then
      redis.call('LPUSH', list, sk)
    else
      redis.call('LINSERT', list, 'BEFORE', sk_at(pos), sk)
    end
  elseif op == 'S' or op == 'U' then
    local pos, c = tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]); p = p + 3
    local rk = prefix .. sk_at(pos)
    if op == 'S' then redis.call('DEL', rk) end
    if c > 0 then hset(rk, p, c); p = p + 2 * c end
  elseif op == 'C' then
    local key, m = ARGV[p + 1], tonumber(ARGV[p + 2]); p = p + 3
    local positions = {}
    for j = 1, m do positions[j] = tonumber(ARGV[p + 2 * (j - 1)]) end
    local sks = sks_at(positions)
    for j = 1, m do redis.call('HSET', prefix .. sks[j], key, ARGV[p + 2 * j - 1]) end
    p = p + 2 * m
  elseif op == 'D' then
    local a, b = tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]); p = p + 3
    local len = redis.call('LLEN', list)
    local gone = redis.call('LRANGE', list, a, b - 1)
    for _, sk in ipairs(gone) do redis.call('DEL', prefix .. sk) end
    if a == 0 then
      redis.call('LTRIM', list, b, -1)
    elseif b >= len then
      redis.call('LTRIM', list, 0, a - 1)
    else
      local tail = redis.call('LRANGE', list, b, -1)
      redis.call('LTRIM', list, 0, a - 1)
      each_chunk(tail, function(...) redis.call('RPUSH', list, ...) end)
    end
  elseif op == 'K' then
    local nk = tonumber(ARGV[p + 1]); p = p + 2
    local keys = {}
    for j = 1, nk do keys[j] = ARGV[p + j - 1] end
    p = p + nk
    local np = tonumber(ARGV[p]); p = p + 1
    local sks
    if np < 0 then
      sks = redis.call('LRANGE', list, 0, -1)
    else
      local positions = {}
      for j = 1, np do positions[j] = tonumber(ARGV[p + j - 1]) end
      p = p + np
      sks = sks_at(positions)
    end
    for _, sk in ipairs(sks) do
      local rk = prefix .. sk
      each_chunk(keys, function(...) redis.call('HDEL', rk, ...) end)
    end
  elseif op == 'X' then
    p = p + 1
    local all = redis.call('LRANGE', list, 0, -1)
    for _, sk in ipairs(all) do redis.call('DEL', prefix .. sk) end
    redis.call('DEL', list)
  else
    return redis.error_reply('asebytes: unknown write op ' .. tostring(op))
  end
end
return {1, redis.call('LLEN', list)}
"#;

/// Rows, one field of rows, or field names, read in one consistent server call.
///
/// `ARGV[2]` = mode: `R` whole rows (flat field/value lists), `K` the fields `ARGV[4..]`
/// of each row (values in that order, nil where absent), `C` one field (`ARGV[4]`) of each
/// row, `H` the field names of each row. `ARGV[3]` = how many field names follow; then
/// runs of positions as `start count` pairs. Reply: `{length, item, item, …}`, an item
/// nil for a placeholder; just `{length}` when a run reaches past the end (the list
/// shrank since the caller looked).
pub static READ: LazyLock<Script> = LazyLock::new(|| Script::new(READ_LUA));

const READ_LUA: &str = r#"
local list, prefix, mode = KEYS[1], ARGV[1], ARGV[2]
local n = redis.call('LLEN', list)
local nk = tonumber(ARGV[3])
local keys = {}
for j = 1, nk do keys[j] = ARGV[3 + j] end
local first = 4 + nk
for q = first, #ARGV, 2 do
  if tonumber(ARGV[q]) + tonumber(ARGV[q + 1]) > n then return {n} end
end
local STEP = 4000
local function hmget(rk)
  local out = {}
  for i = 1, nk, STEP do
    local part = redis.call('HMGET', rk, unpack(keys, i, math.min(i + STEP - 1, nk)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end
local out = {n}
for q = first, #ARGV, 2 do
  local start, count = tonumber(ARGV[q]), tonumber(ARGV[q + 1])
  local sks = redis.call('LRANGE', list, start, start + count - 1)
  for _, sk in ipairs(sks) do
    local rk = prefix .. sk
    local item
    if mode == 'R' then
      item = redis.call('HGETALL', rk)
      if #item == 0 then item = false end
    elseif mode == 'K' then
      if redis.call('EXISTS', rk) == 0 then item = false else item = hmget(rk) end
    elseif mode == 'C' then
      item = redis.call('HGET', rk, keys[1])
    else
      item = redis.call('HKEYS', rk)
    end
    out[#out + 1] = item
  end
end
return out
"#;

/// Removes a group: its rows, its list and its counter, in one step (orphan row hashes
/// that no list entry names are swept by the caller afterwards). `KEYS[2]` = counter.
pub static REMOVE: LazyLock<Script> = LazyLock::new(|| Script::new(REMOVE_LUA));

const REMOVE_LUA: &str = r#"
local list, counter, prefix = KEYS[1], KEYS[2], ARGV[1]
local all = redis.call('LRANGE', list, 0, -1)
for _, sk in ipairs(all) do redis.call('DEL', prefix .. sk) end
redis.call('DEL', list, counter)
return #all
"#;
