-- wrk script of `make bench` (bench/load.py writes the plan and reads the results).
--
-- Run as `wrk -t C -c C -d SECONDS -s bench/wrk.lua URL` with BENCH_PLAN and BENCH_OUT set:
-- one connection per wrk thread, so each thread is one closed-loop caller whose request and
-- response alternate, and its own latencies can be timed here (CLOCK_MONOTONIC through
-- LuaJIT's FFI, the clock Python's time.monotonic() reads). wrk's own histogram is not used:
-- its coordinated-omission correction adds made-up samples, which suits constant-rate load,
-- not closed-loop callers.
--
-- The plan file: line 1 "METHOD<TAB>PATH<TAB>KIND"; then header lines "Name: value" up to an
-- empty line; then one request body per line. Thread k of C sends bodies k+1, k+1+C, … (so
-- consecutive requests across threads go to different users), stops after its last one, and
-- prints "bench-thread-done" so the bench can end wrk without waiting for -d.
--
-- KIND says how a response is counted: "plain" (HTTP 200 = ok), "availability" (a tool
-- result = ok, a tool error = error), "booking" (booked / refused / error).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

-- main state -------------------------------------------------------------------------------
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  thread:set("count", tonumber(os.getenv("BENCH_THREADS")))
  table.insert(threads, thread)
end

-- thread state -----------------------------------------------------------------------------
local method, path, kind
local headers = {}
local bodies = {}
local answered = 0
local started = 0
lat, ends, cls = {}, {}, {}
first_start = nil
sample = nil
errors = {} -- the sentence of each tool error -> how often

function init(args)
  local plan = assert(io.open(os.getenv("BENCH_PLAN"), "r"))
  local head = plan:read("*l")
  method, path, kind = head:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
  for line in plan:lines() do
    if line == "" then break end
    local name, value = line:match("^([^:]+): (.*)$")
    headers[name] = value
  end
  local n = 0
  for line in plan:lines() do
    if n % count == id then
      bodies[#bodies + 1] = line
    end
    n = n + 1
  end
  plan:close()
end

function request()
  -- Closed loop on one connection: the next request is always the one after the last
  -- answer. (wrk also calls this once before the threads start, to check the script: that
  -- call neither sends nor counts.) Never past the last body: the thread stops on its last
  -- answer, and a write already queued then would repeat it (the same tool call id, answered
  -- from the store).
  started = now_us()
  return wrk.format(method, path, headers, bodies[math.min(answered + 1, #bodies)])
end

local function classify(status, body)
  if status ~= 200 then
    return "h"
  end
  if kind == "plain" then
    return "o"
  end
  if body:find('"error":"', 1, true) then
    return "e"
  end
  if not body:find('"result":"', 1, true) then
    return "x"
  end
  if kind == "booking" then
    if body:find('\\"booked\\":true', 1, true) then
      return "b"
    end
    if body:find('\\"booked\\":false', 1, true) then
      return "r"
    end
    return "x"
  end
  return "o"
end

function response(status, headers, body)
  local finished = now_us()
  answered = answered + 1
  if answered == 1 then
    first_start = started
  end
  lat[answered] = finished - started
  ends[answered] = finished
  local class = classify(status, body or "")
  cls[answered] = class
  if class == "e" then
    local sentence = body:match('"error":"(.-)"[,}]') or "?"
    errors[sentence] = (errors[sentence] or 0) + 1
  end
  if sample == nil and class ~= "o" and class ~= "b" then
    sample = string.format("HTTP %d %s", status, string.sub(body or "", 1, 300))
  end
  if answered >= #bodies then
    io.write("bench-thread-done\n")
    io.flush()
    wrk.thread:stop()
  end
end

-- main state, after every thread has stopped -----------------------------------------------
function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  for _, thread in ipairs(threads) do
    local t_lat, t_ends, t_cls = thread:get("lat"), thread:get("ends"), thread:get("cls")
    out:write(string.format("t %d %.0f %d\n", thread:get("id"), thread:get("first_start") or 0,
      #t_lat))
    for i = 1, #t_lat do
      out:write(string.format("r %.0f %.0f %s\n", t_ends[i], t_lat[i], t_cls[i]))
    end
    for sentence, n in pairs(thread:get("errors")) do
      out:write(string.format("m %d %s\n", n, sentence))
    end
    local s = thread:get("sample")
    if s then
      out:write("s " .. s:gsub("[\r\n]", " ") .. "\n")
    end
  end
  local e = summary.errors
  out:write(string.format("e %d %d %d %d %d\n", e.connect, e.read, e.write, e.status, e.timeout))
  out:close()
end
