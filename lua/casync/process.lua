-- casync.process: the Lua half of child processes.  spawn, wait, kill and
-- the pipes are C (src/process.c, src/stream.c); this adds
--
--   casync.process.run(argv [, opts]) -> {code=, signal=, stdout=, stderr=}
--                                        | nil, err
--   casync.process_pool([opts]) -> pool: pool:map(fn, list), pool:run(fn, ...),
--                                        pool:close()
--
-- A pool keeps up to opts.size worker processes (default: the number of
-- CPUs), each a Lua 5.4 interpreter with casync (the `casync` runner when
-- this program runs in one, else lua5.4) started on first use and reused.
-- Functions and values cross as copies (src/copy.c's encoding: functions
-- by bytecode, without upvalues other than _ENV) over a socket on the
-- worker's descriptor 3; its stdout and stderr are this process's.  A
-- call takes its caller's casync.context values along (casync_worker.context
-- in the worker) and belongs to its caller's cancel scope; while it waits,
-- task:info().waiting_on says on which pool and worker; a recording gets a
-- span per call on its worker's track ("process pool#1 worker 2").
local core = require "casync.core"
local argcheck = require "casync.argcheck"

local P = core.process
local spawn, now = core.spawn, core.now
local pack, unpack = table.pack, table.unpack
local spack, sunpack = string.pack, string.unpack

-- raise(msg): error(msg) positioned at the first caller outside this file
-- (as Lua's own "bad argument" errors point at the caller)
local raise = argcheck.raiser(debug.getinfo(1, "S").source)

-- read_all(stream, parts) reads until the end of the stream into parts.
local function read_all(stream, parts)
  while true do
    local s = stream:read()
    if not s then return end
    parts[#parts + 1] = s
  end
end

-- check_opts(fname, n, opts) -> opts or {}: argument n must be a table or nil
local function check_opts(fname, n, opts)
  if opts ~= nil and type(opts) ~= "table" then
    raise(("bad argument #%d to '%s' (table expected, got %s)")
      :format(n, fname, type(opts)))
  end
  return opts or {}
end

-- require_task(fname): raises, at the caller's caller, what a waiting C
-- function raises outside a task or in a plain coroutine inside one.
local function require_task(fname)
  local ok, err = pcall(core._require_task, fname)
  if not ok then raise(err) end
end

-- spawn(fname, argv, opts): P.spawn, its argument errors named as fname's
local function spawn_for(fname, argv, opts)
  local ok, proc, err = pcall(P.spawn, argv, opts)
  if not ok then
    if type(proc) == "string" then
      proc = proc:gsub("^bad argument (#%d+) to '[%w_.]*'", "bad argument %1 to '" .. fname .. "'")
    end
    raise(proc)
  end
  return proc, err
end

local SPAWN_OPTS = {"env", "clear_env", "cwd", "shell", "detached", "fds"}

-- casync.process.run(argv [, opts]) -> result | nil, err: runs argv to the
-- end (as spawn does: a list, no shell unless opts.shell) and captures its
-- output.  result = {code=, signal=, stdout=, stderr=} (code and signal as
-- proc:wait gives them; stdout/stderr strings, nil when opts.stdout or
-- opts.stderr is not "pipe", the default).  opts.input: a string written
-- to its stdin (then closed; stdin is inherited otherwise);
-- opts.timeout: seconds, after which the child is killed (SIGKILL) and run
-- returns nil and an error of kind "timeout" carrying the output so far
-- (err.stdout, err.stderr).  Also env, clear_env, cwd, detached as spawn.
-- A cancelled run kills the child too.
local function run(argv, opts)
  opts = check_opts("run", 2, opts)
  local input, timeout = opts.input, opts.timeout
  if input ~= nil and type(input) ~= "string" then
    raise("bad argument #2 to 'run' (opts.input must be a string)")
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout) then
    raise("bad argument #2 to 'run' (opts.timeout must be a number)")
  end
  local o = {}
  for _, k in ipairs(SPAWN_OPTS) do o[k] = opts[k] end
  o.stdin = input and "pipe" or opts.stdin
  o.stdout = opts.stdout or "pipe"
  o.stderr = opts.stderr or "pipe"
  require_task("run")
  local proc, err = spawn_for("run", argv, o)
  if not proc then return nil, err end
  local out, errs = {}, {}
  local function body()
    local jobs = {function() return proc:wait() end}
    if proc.stdout then jobs[#jobs + 1] = function() read_all(proc.stdout, out) end end
    if proc.stderr then jobs[#jobs + 1] = function() read_all(proc.stderr, errs) end end
    if input then
      jobs[#jobs + 1] = function()
        proc.stdin:write(input) -- a child that does not read: EPIPE, ignored
        proc.stdin:close()
      end
    end
    return core.gather(unpack(jobs))
  end
  local ok, code, sig
  if timeout then
    ok, code, sig = pcall(core.wait_for, body, timeout)
  else
    ok, code, sig = pcall(body)
  end
  if not ok then
    proc:kill("SIGKILL")
    proc:close()
    local e = code
    if core.is_error(e, "timeout") then
      pcall(proc.wait, proc) -- reaped at once after SIGKILL
      local cmd = type(argv) == "table" and argv[1] or argv
      local terr = core.new_error("timeout", ("run: '%s' timed out after %gs")
        :format(tostring(cmd), timeout), "ETIMEDOUT")
      terr.stdout = proc.stdout and table.concat(out) or nil
      terr.stderr = proc.stderr and table.concat(errs) or nil
      return nil, terr
    end
    error(e, 0)
  end
  proc:close()
  -- the signal comes back from gather as the second result of wait's job
  -- only when it is the sole job; ask again
  code, sig = proc:poll()
  return {
    code = code, signal = sig,
    stdout = proc.stdout and table.concat(out) or nil,
    stderr = proc.stderr and table.concat(errs) or nil,
  }
end

P.run = run

---------------------------------------------------------------------------
-- process pool

-- The worker: reads frames from descriptor 3, runs the calls, writes the
-- replies.  Frames: 4-byte big-endian length, then a type byte:
--   "F" id:I4 <encoded function>      define function id
--   "C" job:I4 id:I4 ctx:s4 <encoded args>   call function id; ctx: the
--                                     caller's context values encoded ("": none)
--   "R" job:I4 ok:B <encoded results | encoded error, traceback>
local WORKER = [=[
local casync = require "casync"
local P = casync.process
local function main()
  local ch = assert(casync.stream.stdio(3))
  local fns = {}
  local function msgh(e) -- the traceback down to the call, not the worker
    local tb = debug.traceback(nil, 2)
    local cut = tb:find("\n%s*%[C%]: in function 'xpcall'")
    return {e, cut and tb:sub(1, cut - 1):gsub("\n%s*%(%.%.%.tail calls%.%.%.%)$", "") or tb}
  end
  -- "C": fn(args...), all its results; "M": fn(item) for each item, the
  -- first result of each
  local function call(kind, fn, ...)
    if kind == "C" then return fn(...) end
    local items = table.pack(...)
    local out = {}
    for i = 1, items.n do out[i] = (fn(items[i])) end
    return table.unpack(out, 1, items.n)
  end
  while true do
    local hdr = ch:read_exactly(4)
    if not hdr then break end -- the pool closed: end
    local frame = assert(ch:read_exactly((string.unpack(">I4", hdr))))
    local kind = frame:sub(1, 1)
    if kind == "F" then
      local id, pos = string.unpack(">I4", frame, 2)
      fns[id] = P._decode(frame, pos)
    else
      local job, id, ctx, pos = string.unpack(">I4I4s4", frame, 2)
      casync_worker = casync_worker or {} -- luacheck: ignore (a global)
      casync_worker.context = ctx == "" and {} or P._decode(ctx)
      local r = table.pack(xpcall(function()
        return call(kind, fns[id], P._decode(frame, pos))
      end, msgh))
      local ok, body = pcall(P._encode, "results", table.unpack(r, 2, r.n))
      if not r[1] or not ok then
        local e, tb
        if r[1] then
          e, tb = ("process_pool: cannot send the results back: %s")
            :format(tostring(body)), ""
        else
          e, tb = r[2][1], r[2][2]
        end
        local ok2
        ok2, body = pcall(P._encode, "error", e, tb)
        if not ok2 then body = P._encode("error", tostring(e), tb) end
      end
      body = string.pack(">BI4B", 82, job, r[1] and ok and 1 or 0) .. body
      assert(ch:write({string.pack(">I4", #body), body}))
    end
  end
end
if casync.current() then main() else casync.run(main) end
]=]

local Pool = {}
Pool.__index = Pool
local npools = 0 -- process pool#N: the pools this Lua state made

-- check_self(self, fname): self must be a process pool (a method called
-- with a dot, or on something else, says so)
local function check_self(self, fname)
  if getmetatable(self) ~= Pool then
    local mt = getmetatable(self)
    local got = type(mt) == "table" and type(mt.__name) == "string" and mt.__name
                or type(self)
    raise(("bad argument #1 to '%s' (casync.ProcessPool expected, got %s)")
      :format(fname, got))
  end
end

local function default_command()
  local exe = P.exepath()
  local base = exe and exe:match("[^/]*$") or ""
  if base:match("^casync") or base:match("^lua") then return {exe} end
  return {"lua5.4"}
end

-- casync.process_pool([opts]) -> pool: opts.size (workers, default
-- casync.process.cpu_count()), opts.command (the interpreter to start, a
-- list like {"lua5.4"}; default: this program's own, when it is the casync
-- runner or a lua interpreter, else lua5.4), opts.env (extra environment
-- for the workers; LUA_PATH and LUA_CPATH are this process's package.path
-- and package.cpath, so workers require the same modules).
local function process_pool(opts)
  opts = check_opts("process_pool", 1, opts)
  local size = opts.size or P.cpu_count()
  if math.type(size) ~= "integer" and type(size) == "number" and
     size == math.floor(size) then
    size = math.tointeger(size) or size -- 4.0 is 4
  end
  if math.type(size) ~= "integer" or size < 1 then
    raise("bad argument #1 to 'process_pool' (opts.size must be a positive integer)")
  end
  local command = opts.command or default_command()
  local good = type(command) == "table" and #command >= 1
  for i = 1, good and #command or 0 do
    if type(command[i]) ~= "string" then good = false end
  end
  if not good then
    raise("bad argument #1 to 'process_pool' (opts.command must be a list of strings)")
  end
  if opts.env ~= nil and type(opts.env) ~= "table" then
    raise("bad argument #1 to 'process_pool' (opts.env must be a table)")
  end
  local env = {
    LUA_PATH = package.path, LUA_CPATH = package.cpath,
    LUA_PATH_5_4 = package.path, LUA_CPATH_5_4 = package.cpath,
  }
  for k, v in pairs(opts.env or {}) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number" and v ~= false) then
      raise("bad argument #1 to 'process_pool' (opts.env must map names to strings, " ..
            "numbers or false)")
    end
    env[k] = v
  end
  local self = setmetatable({
    _size = size,
    _command = command,
    _env = env,
    _workers = {},                -- every live worker
    _idle = {},                   -- stack of idle workers
    _nworkers = 0,
    _waiting = core.semaphore(size), -- a permit per worker slot
    _fnids = setmetatable({}, {__mode = "k"}),
    _nextfn = 0,
    _nextjob = 0,
    _nextworker = 0,
    _closed = false,
  }, Pool)
  npools = npools + 1
  self._id = npools
  self._name = "process pool#" .. npools
  return self
end

-- Starts a worker: {proc, ch, fns = {id = true}}.
function Pool:_start()
  local argv = {}
  for i, a in ipairs(self._command) do argv[i] = a end
  argv[#argv + 1] = "-e"
  argv[#argv + 1] = WORKER
  local ok, proc, err = pcall(P.spawn, argv, {env = self._env, stdin = "ignore",
                                             fds = {[3] = "pipe"}})
  if not ok then proc, err = nil, {message = tostring(proc)} end
  if not proc then
    error(core.new_error("io", ("process_pool: cannot start a worker (%s): %s")
      :format(argv[1], tostring(err and err.message)), err and err.code), 0)
  end
  self._nextworker = self._nextworker + 1
  local w = {proc = proc, ch = proc.fds[3], fns = {},
             name = ("%s worker %d"):format(self._name, self._nextworker)}
  self._workers[w] = true
  self._nworkers = self._nworkers + 1
  return w
end

-- Drops a worker whose state is unknown (cancelled mid-call, or dead).
function Pool:_discard(w)
  if not self._workers[w] then return end
  self._workers[w] = nil
  self._nworkers = self._nworkers - 1
  w.proc:kill("SIGKILL")
  w.proc:close()
end

local function frame(kind, body)
  return {spack(">I4", #body + 1), kind, body}
end

-- Runs fn (encoded as fnbody) on a worker, as a call ("C": argbody holds
-- its arguments) or over a chunk of a map ("M": argbody holds the items),
-- with the caller's context values (ctxbody, "" for none); returns true,
-- results... or false, err.  The task says what it waits on meanwhile,
-- and a recording gets the call's span on the worker's track.
function Pool:_call(fn, fnbody, kind, argbody, ctxbody)
  if self._closed then
    error(core.new_error("closed", "process_pool: the pool is closed"), 0)
  end
  core._doing(self._name .. " job, waiting for a free worker")
  local permit <close> = self._waiting:acquire()
  local w = table.remove(self._idle) or self:_start()
  core._doing(w.name .. " job")
  local t0 = now()
  local id = self._fnids[fn]
  if not id then
    self._nextfn = self._nextfn + 1
    id = self._nextfn
    self._fnids[fn] = id
  end
  self._nextjob = self._nextjob + 1
  local job = self._nextjob
  local ok, r = pcall(function()
    local frames = {}
    if not w.fns[id] then
      frames[1] = frame("F", spack(">I4", id) .. fnbody)
    end
    frames[#frames + 1] = frame(kind, spack(">I4I4s4", job, id, ctxbody) .. argbody)
    local msgs = {}
    for _, f in ipairs(frames) do for _, s in ipairs(f) do msgs[#msgs + 1] = s end end
    local sent, err = w.ch:write(msgs)
    if sent then
      w.fns[id] = true
      local hdr
      hdr, err = w.ch:read_exactly(4)
      if hdr then
        local body
        body, err = w.ch:read_exactly((sunpack(">I4", hdr)))
        if body then return body end
      end
    end
    -- the worker went away: say how it ended
    local code, sig = w.proc:wait(1)
    error(core.new_error("process",
      ("process_pool: worker (pid %d) %s while running a call"):format(
        w.proc.pid,
        sig and ("was killed by " .. sig)
          or code and ("exited with code " .. code)
          or ("stopped answering (" .. tostring(err) .. ")"))), 0)
  end)
  core._doing(nil)
  core._trace_span("job", kind == "C" and "process job" or "process map job", t0,
                   now() - t0, w.name)
  if not ok then -- cancelled, or the worker died: it cannot be reused
    self:_discard(w)
    error(r, 0)
  end
  if self._closed then self:_discard(w) else self._idle[#self._idle + 1] = w end
  local rjob, rok, pos = sunpack(">xI4B", r)
  assert(rjob == job, "process_pool: reply out of order")
  if rok == 1 then return true, P._decode(r, pos) end
  local e, tb = P._decode(r, pos)
  if type(e) == "string" then
    e = ("%s\n(in process pool worker, pid %d)\n%s"):format(e, w.proc.pid, tb)
  elseif type(e) == "table" and getmetatable(e) == nil and e.traceback == nil then
    e.traceback = tb
  end
  return false, e
end

-- encode_context(fname) -> the caller's casync.context values encoded, ""
-- when it has none; a value that cannot be copied is an error naming it
local function encode_context(fname)
  local ctx = core.context.all()
  if next(ctx) == nil then return "" end
  local ok, body = pcall(P._encode_at, "context", 0, ctx)
  if not ok then
    raise(("%s: %s (casync.context values go with the job)"):format(fname, body))
  end
  return body
end

-- encode_fn(fname, fn) -> fn's encoding, or a bad argument error
local function encode_fn(fname, fn)
  if type(fn) ~= "function" then
    raise(("bad argument #1 to '%s' (function expected, got %s)")
      :format(fname, type(fn)))
  end
  local ok, body = pcall(P._encode_fn, fn)
  if not ok then
    raise(("bad argument #1 to '%s' (%s)"):format(fname, body))
  end
  return body
end

-- pool:run(fn, ...) -> task: fn(...) in a worker process, as a task
-- started at once (Python's executor.submit); waiting for it gives fn's
-- results, or raises its error (a string error with the worker's
-- traceback appended).  fn may use globals and require, but no upvalues;
-- the arguments are copied (a value that cannot be is a bad argument), as
-- are the caller's casync.context values (casync_worker.context in the
-- worker).  The task is cancelled with the caller's cancel scope.
function Pool:run(fn, ...)
  check_self(self, "run")
  local fnbody = encode_fn("run", fn)
  local okenc, argbody = pcall(P._encode, "args", ...)
  if not okenc then raise("bad argument #2 to 'run' (" .. argbody .. ")") end
  local ctxbody = encode_context("run")
  if self._closed then
    error(core.new_error("closed", "process_pool: the pool is closed"), 2)
  end
  local t = spawn(function()
    local r = pack(self:_call(fn, fnbody, "C", argbody, ctxbody))
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end)
  core._join_scope(t)
  return t
end

-- pool:map(fn, list [, opts]) -> results: fn(list[i]) for each entry, in
-- worker processes, opts.chunksize entries per call (default 1); the first
-- result of each, in list order (an array with field n).  The first error
-- raised by a call is raised here; the calls still running are cancelled
-- (their workers killed, replaced on the next call), as they are when the
-- caller is (its scope included).  The caller's casync.context values go
-- with each call.  Waits: call it in a task.
function Pool:map(fn, list, opts)
  check_self(self, "map")
  if type(list) ~= "table" then
    raise(("bad argument #2 to 'map' (table expected, got %s)"):format(type(list)))
  end
  local chunk = 1
  if opts ~= nil then
    if type(opts) ~= "table" then
      raise(("bad argument #3 to 'map' (table expected, got %s)"):format(type(opts)))
    end
    chunk = opts.chunksize or 1
    if type(chunk) == "number" and chunk == math.floor(chunk) then
      chunk = math.tointeger(chunk) or chunk
    end
    if math.type(chunk) ~= "integer" or chunk < 1 then
      raise("bad argument #3 to 'map' (opts.chunksize must be a positive integer)")
    end
  end
  local n = list.n or #list
  if math.type(n) ~= "integer" or n < 0 then
    raise("bad argument #2 to 'map' (list.n must be a non-negative integer)")
  end
  local fnbody = encode_fn("map", fn)
  local ctxbody = encode_context("map")
  local bodies, firsts = {}, {}
  for first = 1, n, chunk do
    local last = math.min(n, first + chunk - 1)
    local ok, body = pcall(P._encode_at, "list", first, unpack(list, first, last))
    if not ok then raise("bad argument #2 to 'map' (" .. body .. ")") end
    bodies[#bodies + 1], firsts[#firsts + 1] = body, first
  end
  if self._closed then
    error(core.new_error("closed", "process_pool: the pool is closed"), 2)
  end
  require_task("map")
  local results = {n = n}
  local next_c = 0
  local function slot()
    while next_c < #bodies do
      next_c = next_c + 1
      local c = next_c
      local r = pack(self:_call(fn, fnbody, "M", bodies[c], ctxbody))
      if not r[1] then error(r[2], 0) end
      for k = 2, r.n do results[firsts[c] + k - 2] = r[k] end
    end
  end
  local slots = {}
  for k = 1, math.min(self._size, #bodies) do slots[k] = slot end
  if #slots > 0 then core.gather(slots) end
  return results
end

-- pool:size() -> the most workers it runs at once
function Pool:size()
  check_self(self, "size")
  return self._size
end

-- pool:close(): ends the workers (they exit when their socket closes);
-- inside a task it waits until they have.  Later calls raise an error of
-- kind "closed".  Also __close and __gc (which do not wait).
function Pool:close()
  check_self(self, "close")
  if self._closed then return end
  self._closed = true
  local procs = {}
  for w in pairs(self._workers) do
    w.ch:close()
    procs[#procs + 1] = w.proc
  end
  self._workers, self._idle, self._nworkers = {}, {}, 0
  local t = core.current()
  if t and coroutine.isyieldable() then
    for _, p in ipairs(procs) do
      if not p:wait(5) then p:kill("SIGKILL"); p:wait() end
      p:close()
    end
  end
end

Pool.__close = Pool.close
Pool.__gc = function(self)
  if self._closed then return end
  self._closed = true
  for w in pairs(self._workers) do w.ch:close() end
end
Pool.__name = "casync.ProcessPool"
Pool.__tostring = function(self)
  return ("casync.ProcessPool (%s, %d/%d workers%s)"):format(self._name, self._nworkers,
    self._size, self._closed and ", closed" or "")
end

P.pool = process_pool
return P
