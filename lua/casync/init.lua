-- casync: the Lua front end.  The scheduler, timers, combinators and wait
-- lists are C (casync.core); this module names each of its functions (so
-- editors and documentation tools see them; their types are in
-- casync/meta.lua) and adds the conveniences written in Lua.
--
-- A function added to casync.core must be listed here too:
-- spec/annotations_spec.lua fails, naming it, until it is.
local core = require "casync.core"

local casync = {
  version = core.version,

  -- tasks (task.c, loop.c)
  run = core.run,
  spawn = core.spawn,
  current = core.current,
  call_later = core.call_later,

  -- time (timer.c, sleep_until.c)
  sleep = core.sleep,
  sleep_until = core.sleep_until,
  now = core.now,
  advance = core.advance,

  -- scopes, deadlines, cancellation (scope.c, deadline.c, cscope.c)
  scope = core.scope,
  timeout = core.timeout,
  fail_after = core.fail_after,
  move_on_after = core.move_on_after,
  deadline = core.deadline,
  shield = core.shield,
  checkpoint = core.checkpoint,

  -- task-local context (tcontext.c)
  context = core.context,

  -- combinators (combinators.c)
  gather = core.gather,
  all_settled = core.all_settled,
  race = core.race,
  wait = core.wait,
  wait_for = core.wait_for,

  -- channels, select, queues (channel.c)
  channel = core.channel,
  select = core.select,
  queue = core.queue,

  -- synchronization (sync.c)
  semaphore = core.semaphore,
  lock = core.lock,
  event = core.event,
  condition = core.condition,

  -- worker threads (thread.c)
  thread = core.thread,
  thread_pool = core.thread_pool,

  -- worker processes of a server's `workers = n` (workers.c)
  worker = core.worker,

  -- errors (error.c)
  new_error = core.new_error,
  is_error = core.is_error,
  on_unobserved = core.on_unobserved,

  -- callback APIs as waits (wrap.c)
  wrap = core.wrap,

  -- seeing what runs: the watchdog (watchdog.c), the recorder (trace.c),
  -- the task tree and debug mode (debug.c)
  watchdog = core.watchdog,
  trace = core.trace,
  tasks = core.tasks,
  dump = core.dump,
  debug = core.debug,

  -- I/O: streams, TCP, Unix sockets, stdio, DNS, files, processes, signals
  stdin = core.stdin,
  stdout = core.stdout,
  stderr = core.stderr,
  stream = core.stream,
  tcp = core.tcp,
  tls = core.tls,
  udp = core.udp,
  pipe = core.pipe,
  dns = core.dns,
  fs = core.fs,
  process = core.process,
  signal = core.signal,

  -- for hosts, tests and the Lua modules: run reporting instead of raising,
  -- counters, the check waiting functions make
  _run_report = core._run_report,
  _stats = core._stats,
  _require_task = core._require_task,
  _trace_span = core._trace_span,
  _join_scope = core._join_scope,
  _doing = core._doing,
  _debug = core._debug, -- test builds (CASYNC_TESTING) only
}

-- Lua names a C function in "bad argument" messages by searching
-- package.loaded; with the same functions in two modules the name would
-- change from run to run.  casync.core stays reachable, through a proxy.
package.loaded["casync.core"] = setmetatable({}, {__index = core})

-- Conveniences written in Lua on the C core (issue 3).
casync.rate_limiter = require "casync.rate_limiter"
casync.retry = require "casync.retry"
casync.map = require "casync.map"

-- Processes: run() and the process pool, in Lua on the C core (issue 5).
require "casync.process" -- adds run and pool to casync.process
casync.process_pool = casync.process.pool

-- HTTP/1.1 (issue 4): the server is C, the client Lua on casync.tcp.
casync.http = require "casync.http"

-- luv's request functions as waits (casync.wrap), when luv is installed.
casync.uv = require "casync.uv" or nil

return casync
