-- process.c and lua/casync/process.lua: casync.process.spawn (argv, env,
-- cwd, stdio as streams, files or other streams), wait/poll/kill/close,
-- run (captured output, input, timeout) and the process pool.
local casync = require "casync"
local P = casync.process

local errmsg = helper.errmsg

-- sh(script [, opts]) -> spawn of /bin/sh -c script
local function sh(script, opts)
  return P.spawn({"/bin/sh", "-c", script}, opts)
end

local read_all = helper.read_all

describe("process.spawn", function()
  it("runs an argument vector without a shell; pid, exit code", async(function()
    local p = assert(P.spawn({"printf", "%s|", "a b", "$HOME", "*"}, {stdout = "pipe"}))
    assert.is_true(math.type(p.pid) == "integer" and p.pid > 0)
    assert.truthy(tostring(p):find("casync.Process (pid " .. p.pid, 1, true))
    assert.equal("a b|$HOME|*|", read_all(p.stdout))
    local code, sig = p:wait()
    assert.equal(0, code)
    assert.is_nil(sig)
    assert.equal(0, (p:wait())) -- again: at once
    assert.equal(0, (p:poll()))
    assert.is_nil(p.stdin)
    assert.is_nil(p.stderr)
    p:close()
  end))

  it("reports exit codes and the signal that ended a child", async(function()
    assert.equal(7, (sh("exit 7"):wait()))
    local p = assert(P.spawn({"sleep", "10"}))
    assert.is_nil(p:poll())
    assert.is_true(p:kill())
    local code, sig = p:wait()
    assert.equal(128 + 15, code)
    assert.equal("SIGTERM", sig)
    p = assert(P.spawn({"sleep", "10"}))
    assert.is_true(p:kill("kill"))
    code, sig = p:wait()
    assert.equal(137, code)
    assert.equal("SIGKILL", sig)
    local r, err = p:kill()
    assert.is_nil(r)
    assert.equal("ESRCH", err.code)
    p = assert(P.spawn({"sleep", "10"}))
    assert.is_true(p:kill(10)) -- SIGUSR1 by number
    assert.same({138, "SIGUSR1"}, {p:wait()})
  end))

  it("wait: several waiters, a timeout, cancellation", async(function()
    local p = assert(sh("sleep 0.2; exit 3"))
    local r, err = p:wait(0.01)
    assert.is_nil(r)
    assert.is_true(casync.is_error(err, "timeout"))
    local ok, e = pcall(casync.wait_for, function() return p:wait() end, 0.01)
    assert.is_false(ok)
    assert.is_true(casync.is_error(e, "timeout"))
    local a = casync.spawn(function() return p:wait() end)
    local b = casync.spawn(function() return p:wait() end)
    assert.equal(3, a:wait())
    assert.equal(3, b:wait())
    assert.equal(3, (p:wait(0)))
  end))

  it("fails with nil, err when the program cannot start", async(function()
    local r, err = P.spawn({"no-such-program-casync"})
    assert.is_nil(r)
    assert.is_true(casync.is_error(err, "io"))
    assert.equal("ENOENT", err.code)
    assert.equal("io: spawn 'no-such-program-casync': no such file or directory", tostring(err))
    r, err = P.spawn({"/tmp"}) -- a directory
    assert.is_nil(r)
    assert.equal("EACCES", err.code)
    r, err = P.spawn({"true"}, {cwd = "/no/such/dir", stdout = "pipe"})
    assert.is_nil(r)
    assert.equal("ENOENT", err.code)
    -- the pipe made for it was closed again
    casync.sleep(0.002)
    assert.equal(0, casync.stream._stats().open)
  end))

  it("runs a command line with opts.shell", async(function()
    local p = assert(P.spawn("echo $((6*7)) | tr 4 X", {shell = true, stdout = "pipe"}))
    assert.equal("X2\n", read_all(p.stdout))
    assert.equal(0, (p:wait()))
    p = assert(P.spawn({'echo "$0-$1"', "zero", "one"}, {shell = true, stdout = "pipe"}))
    assert.equal("zero-one\n", read_all(p.stdout))
    p:wait()
  end))

  it("merges opts.env over the environment; false removes; clear_env", async(function()
    local function env_of(opts)
      opts.stdout = "pipe"
      local p = assert(P.spawn({"env"}, opts))
      local out = read_all(p.stdout)
      p:wait()
      local t = {}
      for k, v in out:gmatch("([^=\n]+)=([^\n]*)") do t[k] = v end
      return t
    end
    local e = env_of({env = {CASYNC_X = "1", CASYNC_N = 42}})
    assert.equal("1", e.CASYNC_X)
    assert.equal("42", e.CASYNC_N)
    assert.equal(os.getenv("PATH"), e.PATH)
    e = env_of({env = {PATH = false, HOME = "/h"}})
    assert.is_nil(e.PATH)
    assert.equal("/h", e.HOME)
    local p = assert(P.spawn({"/usr/bin/env"}, {clear_env = true, env = {ONLY = "me"}, stdout = "pipe"}))
    assert.equal("ONLY=me\n", read_all(p.stdout))
    p:wait()
  end))

  it("runs in opts.cwd", async(function()
    local p = assert(P.spawn({"pwd"}, {cwd = "/tmp", stdout = "pipe"}))
    assert.equal("/tmp\n", read_all(p.stdout))
    p:wait()
  end))

  it("pipes stdin, stdout and stderr as casync streams", async(function()
    local p = assert(P.spawn({"sh", "-c", "tr a-z A-Z; echo err >&2"},
                             {stdin = "pipe", stdout = "pipe", stderr = "pipe"}))
    assert.equal("pipe", p.stdin:kind())
    assert(p.stdin:write("hello\n"))
    p.stdin:close()
    assert.equal("HELLO", p.stdout:read_line())
    assert.equal("err", p.stderr:read_line())
    assert.equal(0, (p:wait()))
    p:close()
    assert.is_true(p.stdout:closed())
  end))

  it("moves large output on two pipes without deadlock (8 MB each)", async(function()
    local p = assert(sh("head -c 8388608 /dev/zero; head -c 8388608 /dev/zero >&2",
                        {stdout = "pipe", stderr = "pipe"}))
    local out, err = casync.gather(function() return #read_all(p.stdout) end,
                                   function() return #read_all(p.stderr) end)
    assert.equal(8388608, out)
    assert.equal(8388608, err)
    assert.equal(0, (p:wait()))
    p:close()
  end, 30))

  it("connects stdio to files, descriptors, other streams, or nothing", async(function()
    local name = os.tmpname()
    local f = assert(casync.fs.open(name, "w"))
    local p = assert(P.spawn({"echo", "to a file"}, {stdout = f}))
    p:wait()
    f:close()
    assert.equal("to a file\n", casync.fs.read_file(name))
    os.remove(name)
    -- a pipeline: the first child's stdout is the second one's stdin
    local a = assert(P.spawn({"printf", "b\\na\\nc\\n"}, {stdout = "pipe"}))
    local b = assert(P.spawn({"sort"}, {stdin = a.stdout, stdout = "pipe"}))
    a.stdout:close()
    assert.equal("a\nb\nc\n", read_all(b.stdout))
    a:wait()
    b:wait()
    b:close()
    p = assert(P.spawn({"sh", "-c", "echo hidden; echo also >&2"}, {stdout = "ignore", stderr = 1}))
    assert.equal(0, (p:wait()))
    -- more descriptors: opts.fds
    p = assert(P.spawn({"sh", "-c", "echo on-three >&3; exec 3>&-; cat <&4"},
                       {fds = {[3] = "pipe", [4] = "pipe"}, stdout = "pipe"}))
    assert.equal("on-three\n", p.fds[3]:read())
    assert(p.fds[4]:write("via four"))
    p.fds[4]:close()
    assert.equal("via four", read_all(p.stdout))
    p:wait()
    p:close()
  end))

  it("<close> kills a child still running; close() only closes the pipes", async(function()
    local p
    do
      local q <close> = assert(P.spawn({"sleep", "10"}, {stdout = "pipe"}))
      p = q
    end
    assert.same({137, "SIGKILL"}, {p:wait()})
    assert.is_true(p.stdout:closed())
    local r = assert(P.spawn({"sh", "-c", "sleep 0.05; exit 4"}, {stdout = "pipe"}))
    r:close()
    assert.is_true(r.stdout:closed())
    assert.equal(4, (r:wait()))
  end))

  it("rejects bad arguments", async(function()
    local function bad(pat, ...)
      local msg = errmsg(P.spawn, ...)
      assert.truthy(msg:find(pat, 1, true), msg)
    end
    bad("table expected, got no value")
    bad("argv must not be empty", {})
    bad("argv[2] must be a string, not table", {"echo", {}})
    bad("argv[1] contains a zero byte", {"ec\0ho"})
    bad("command line needs opts.shell", "echo hi")
    bad("table expected, got string", {"true"}, "x")
    bad("opts.env must be a table", {"true"}, {env = "A=1"})
    bad("opts.env keys must be strings", {"true"}, {env = {"x"}})
    bad("bad variable name 'A=B'", {"true"}, {env = {["A=B"] = "1"}})
    bad("opts.env.A must be a string, a number or false", {"true"}, {env = {A = {}}})
    bad("opts.cwd must be a string", {"true"}, {cwd = 1})
    bad("opts.stdout must be \"pipe\", \"inherit\", \"ignore\"", {"true"}, {stdout = "bogus"})
    bad("opts.stdin must be", {"true"}, {stdin = {}})
    bad("opts.fds keys must be descriptors 3 to 15", {"true"}, {fds = {[2] = "pipe"}})
    bad("opts.fds[5] must be", {"true"}, {fds = {[5] = true}})
    local s = assert(P.spawn({"true"}, {stdout = "pipe"}))
    s.stdout:close()
    bad("opts.stdin is a closed stream", {"true"}, {stdin = s.stdout})
    s:wait()
    local p = assert(P.spawn({"true"}))
    assert.truthy(errmsg(p.kill, p, "SIGNOPE"):find("unknown signal 'SIGNOPE'", 1, true))
    assert.truthy(errmsg(p.kill, p, 99):find("no such signal", 1, true))
    assert.truthy(errmsg(p.wait, p, "x"):find("number expected", 1, true))
    assert.truthy(errmsg(p.wait, {}):find("casync.Process expected", 1, true))
    p:wait()
    -- nothing was left open by the failed calls
    casync.sleep(0.002)
    collectgarbage()
    assert.equal(0, casync.stream._stats().open)
  end))

  it("wait raises outside a task", function()
    local p
    casync.run(function() p = assert(P.spawn({"true"})) end)
    assert.truthy(errmsg(p.wait, p):find("wait: must be called inside a task", 1, true))
    casync.run(function() p:wait() end)
  end)

  it("cpu_count, exepath, pid", function()
    assert.is_true(P.cpu_count() >= 1)
    assert.truthy(P.exepath():match("^/"))
    assert.is_true(P.pid() > 1)
  end)
end)

describe("process.run", function()
  it("captures stdout and stderr with the exit code", async(function()
    local r = assert(P.run({"sh", "-c", "echo out; echo err >&2; exit 5"}))
    assert.same({code = 5, stdout = "out\n", stderr = "err\n"}, r)
    r = assert(P.run("kill -9 $$", {shell = true}))
    assert.equal(137, r.code)
    assert.equal("SIGKILL", r.signal)
    r = assert(P.run({"echo", "x"}, {stdout = "ignore"}))
    assert.is_nil(r.stdout)
    assert.equal("", r.stderr)
  end))

  it("writes opts.input to stdin", async(function()
    local r = assert(P.run({"wc", "-c"}, {input = ("z"):rep(3 << 20)}))
    assert.equal(3 << 20, tonumber(r.stdout))
    r = assert(P.run({"true"}, {input = ("z"):rep(1 << 20)})) -- never read
    assert.equal(0, r.code)
  end))

  it("kills the child after opts.timeout: nil and a timeout error with the output so far", async(function()
    local t0 = casync.now()
    local r, err = P.run({"sh", "-c", "echo started; sleep 10"}, {timeout = 0.3})
    assert.is_nil(r)
    assert.is_true(casync.is_error(err, "timeout"))
    assert.equal("started\n", err.stdout)
    assert.equal("", err.stderr)
    assert.truthy(tostring(err):find("run: 'sh' timed out after 0.3s", 1, true))
    assert.is_true(casync.now() - t0 < 2)
  end))

  it("kills the child when cancelled", async(function()
    local name = os.tmpname()
    local t = casync.spawn(P.run, {"sh", "-c", "echo $$ > " .. name .. "; sleep 10"})
    casync.sleep(0.2)
    t:cancel()
    assert.is_false(pcall(t.wait, t))
    assert.is_true(t:cancelled())
    local pid = io.open(name):read("n")
    os.remove(name)
    casync.sleep(0.05)
    assert.is_falsy(os.execute("kill -0 " .. pid .. " 2>/dev/null"))
  end))

  it("returns nil, err when the program cannot start; checks its options", async(function()
    local r, err = P.run({"no-such-program-casync"})
    assert.is_nil(r)
    assert.equal("ENOENT", err.code)
    assert.truthy(errmsg(P.run, {"true"}, {input = 5}):find("opts.input must be a string", 1, true))
    assert.truthy(errmsg(P.run, {"true"}, {timeout = "1"}):find("opts.timeout must be a number", 1, true))
    assert.truthy(errmsg(P.run, {"true"}, 1):find("table expected", 1, true))
  end))

  it("raises outside a task", function()
    assert.truthy(errmsg(P.run, {"true"}):find("run: must be called inside a task", 1, true))
  end)
end)

describe("process_pool", function()
  local function square(x) return x * x end

  it("maps a function over a list in worker processes, results in order", async(function()
    local pool <close> = casync.process_pool{size = 3}
    assert.equal(3, pool:size())
    -- later items finish first: the order of the results is the list's
    local r = pool:map(function(x)
      require("casync").sleep((6 - x) * 0.01)
      return x * 10, "ignored second result"
    end, {1, 2, 3, 4, 5})
    assert.same({10, 20, 30, 40, 50, n = 5}, r)
    assert.same({1, 4, 9, n = 3}, pool:map(square, {1, 2, 3}))
    assert.same({n = 0}, pool:map(square, {}))
    -- several entries per call
    local list = {}
    for i = 1, 25 do list[i] = i end
    local sq = pool:map(square, list, {chunksize = 4})
    assert.equal(25, sq.n)
    for i = 1, 25 do assert.equal(i * i, sq[i]) end
    assert.truthy(errmsg(pool.map, pool, square, {1}, {chunksize = 0})
      :find("opts.chunksize must be a positive integer", 1, true))
    assert.truthy(errmsg(pool.map, pool, square, {1}, 5):find("bad argument #3", 1, true))
    -- holes count, as with table.pack
    local h = pool:map(function(x) return x end, {n = 3, 1, nil, 3})
    assert.equal(3, h.n)
    assert.is_nil(h[2])
  end))

  it("runs in separate processes, in parallel", async(function()
    local pool <close> = casync.process_pool{size = 4}
    local mypid = P.pid()
    local t0 = casync.now()
    local pids = pool:map(function(x)
      require("casync").sleep(0.25)
      return require("casync").process.pid()
    end, {1, 2, 3, 4})
    local took = casync.now() - t0
    local seen = {}
    for i = 1, 4 do
      assert.are_not.equal(mypid, pids[i])
      seen[pids[i]] = true
    end
    assert.equal(4, #(function() local l = {} for k in pairs(seen) do l[#l + 1] = k end return l end)())
    assert.is_true(took < 0.9, "took " .. took)
  end))

  it("copies arguments and results (tables, shared references, functions)", async(function()
    local pool <close> = casync.process_pool{size = 1}
    local t = {1, 2, name = "x"}
    t.self = t
    local task = pool:run(function(x, y)
      return x.self == x, y.name, function(n) return n + 1 end
    end, t, t)
    assert.is_false(task:done()) -- a task, started at once
    local a, b, c = task:wait()
    assert.is_true(a)
    assert.equal("x", b)
    assert.equal(8, c(7))
    assert.is_nil(pool:run(function() end):wait())
    -- several at once: as many as there are workers run together
    local tasks = {}
    for i = 1, 3 do tasks[i] = pool:run(function(x) return x + 1 end, i) end
    assert.same({2, 3, 4, n = 3}, casync.gather(tasks))
  end))

  it("raises the call's error: strings with the worker's traceback", async(function()
    local pool <close> = casync.process_pool{size = 2}
    local ok, err = pcall(pool.map, pool, function(x)
      if x == 3 then error("bad item " .. x) end
      return x
    end, {1, 2, 3, 4})
    assert.is_false(ok)
    assert.truthy(err:find("bad item 3", 1, true), err)
    assert.truthy(err:find("in process pool worker, pid %d+"), err)
    assert.truthy(err:find("stack traceback", 1, true), err)
    local t = pool:run(function() error({code = 42}) end)
    ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal(42, err.code)
    assert.is_string(err.traceback)
    -- still usable
    assert.same({1, 4, n = 2}, pool:map(square, {1, 2}))
  end))

  it("rejects functions with upvalues and values it cannot copy", async(function()
    local pool <close> = casync.process_pool{size = 1}
    local up = 3
    local msg = errmsg(pool.map, pool, function(x) return x + up end, {1})
    assert.truthy(msg:find("bad argument #1 to 'map' (cannot copy fn: ", 1, true), msg)
    msg = errmsg(pool.map, pool, square, {1, {cfg = {cb = io.write}}})
    assert.truthy(msg:find("bad argument #2 to 'map' (cannot copy list[2].cfg.cb", 1, true), msg)
    msg = errmsg(pool.run, pool, square, 1, coroutine.create(print))
    assert.truthy(msg:find("cannot copy args[2]", 1, true), msg)
    assert.truthy(errmsg(pool.map, pool, "f", {}):find("function expected, got string", 1, true))
    assert.truthy(errmsg(pool.map, pool, square, 5):find("table expected, got number", 1, true))
    -- a result that cannot be copied back is the call's error
    local t = pool:run(function() return io.stdout end)
    msg = errmsg(t.wait, t)
    assert.truthy(msg:find("cannot send the results back", 1, true), msg)
    assert.truthy(errmsg(casync.process_pool, {size = 0}):find("opts.size must be a positive integer", 1, true))
    assert.truthy(errmsg(casync.process_pool, {command = "lua"}):find("opts.command must be a list", 1, true))
  end))

  it("survives a worker that dies, and a cancelled map (its workers are killed)", async(function()
    local pool <close> = casync.process_pool{size = 2}
    local t = pool:run(function() os.exit(3) end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "process"))
    assert.truthy(tostring(err):find("exited with code 3 while running a call", 1, true))
    assert.same({4, n = 1}, pool:map(square, {2}))
    local pids = pool:map(function() return require("casync").process.pid() end, {1, 2})
    ok, err = pcall(casync.wait_for, function()
      return pool:map(function() while true do end end, {1, 2})
    end, 0.2)
    assert.is_true(casync.is_error(err, "timeout"))
    casync.sleep(0.05)
    for i = 1, 2 do assert.is_falsy(os.execute("kill -0 " .. pids[i] .. " 2>/dev/null")) end
    assert.same({9, n = 1}, pool:map(square, {3}))
  end))

  it("close ends the workers; later calls raise", async(function()
    local pool = casync.process_pool{size = 2}
    local pids = pool:map(function() require("casync").sleep(0.05) return require("casync").process.pid() end, {1, 2})
    pool:close()
    pool:close()
    for i = 1, 2 do assert.is_falsy(os.execute("kill -0 " .. pids[i] .. " 2>/dev/null")) end
    local ok, err = pcall(pool.map, pool, square, {1})
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "closed"))
    ok, err = pcall(pool.run, pool, square, 1)
    assert.is_true(casync.is_error(err, "closed"))
    assert.truthy(tostring(pool):find("closed", 1, true))
  end))

  it("uses the number of CPUs by default, and a given interpreter", async(function()
    local pool <close> = casync.process_pool()
    assert.equal(P.cpu_count(), pool:size())
    local lua <close> = casync.process_pool{size = 1, command = {"lua5.4"}}
    assert.equal("Lua 5.4", lua:run(function() return _VERSION end):wait())
    local bad <close> = casync.process_pool{size = 1, command = {"no-such-lua"}}
    local t = bad:run(square, 2)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "io"))
    assert.truthy(tostring(err):find("cannot start a worker", 1, true))
  end))
end)

describe("the argument checks of process.run, process_pool and its methods", function()
  local P = casync.process

  it("process.spawn refuses a zero byte in an environment value, as in cwd", function()
    assert.matches("bad argument #2 to '[%w.]*spawn' %(opts.env.A contains a zero byte%)",
      helper.errmsg(P.spawn, {"true"}, {env = {A = "x\0y"}}))
    assert.matches("bad argument #2 to '[%w.]*spawn' %(opts.cwd contains a zero byte%)",
      helper.errmsg(P.spawn, {"true"}, {cwd = "/\0tmp"}))
    assert.matches("bad argument #1 to '[%w.]*spawn' %(the command line contains a zero byte%)",
      helper.errmsg(P.spawn, "echo a\0b", {shell = true}))
  end)

  it("process.run refuses bad arguments as Lua does, naming run", function()
    helper.assert_sweep("process.run", P.run, function()
      return table.pack({"true"}, {})
    end, {fields = {[2] = {"input", "timeout", "env", "clear_env", "cwd", "shell",
                           "detached", "stdin", "stdout", "stderr", "fds"}},
          timeout = 5})
    assert.matches("^bad argument #2 to 'run' %(opts.env.A contains a zero byte%)",
      casync.run(function() return helper.errmsg(P.run, {"true"}, {env = {A = "x\0y"}}) end))
  end)

  it("process.run says what is wrong outside a task and in a plain coroutine", function()
    assert.matches("^run: must be called inside a task", helper.errmsg(P.run, {"true"}))
    async(function()
      local ok, err = coroutine.wrap(function() return pcall(P.run, {"true"}) end)()
      assert.is_false(ok)
      assert.matches("^run: cannot suspend a coroutine that casync does not manage " ..
                     "%(a plain coroutine inside a task%)", err)
    end)()
  end)

  it("process_pool refuses bad options", function()
    helper.assert_sweep("process_pool", casync.process_pool, function()
      return table.pack({size = 1})
    end, {fields = {[1] = {"size", "command", "env"}}})
    assert.matches("bad argument #1 to 'process_pool' %(table expected, got number%)",
      helper.errmsg(casync.process_pool, 5))
  end)

  it("every method refuses a wrong self and bad arguments", function()
    local Pool = getmetatable(casync.process_pool{size = 1})
    local good = {
      run = function() return table.pack(casync.process_pool{size = 1}, function(x) return x end, 1) end,
      map = function() return table.pack(casync.process_pool{size = 1}, function(x) return x end, {1, 2}, {chunksize = 1}) end,
      size = function() return table.pack(casync.process_pool{size = 1}) end,
      close = function() return table.pack(casync.process_pool{size = 1}) end,
    }
    -- each pool closed after each call: no worker left running
    local function cleanup(args)
      for i = 1, args.n do
        if getmetatable(args[i]) == Pool then args[i]:close() end
      end
    end
    for name, make in pairs(good) do
      helper.assert_sweep("pool:" .. name, Pool[name], make,
        {fields = {[4] = name == "map" and {"chunksize"} or nil}, timeout = 5,
         cleanup = cleanup})
      -- a method called with a dot, on something else
      assert.matches(("^bad argument #1 to '%s' %%(casync.ProcessPool expected, got string%%)"):format(name),
        helper.errmsg(Pool[name], "", function() end))
    end
    assert.matches("got casync.Channel", helper.errmsg(Pool.size, casync.channel()))
  end)

  it("pool:map says what is wrong in a plain coroutine", async(function()
    local pool <close> = casync.process_pool{size = 1}
    local ok, err = coroutine.wrap(function()
      return pcall(pool.map, pool, function(x) return x end, {1})
    end)()
    assert.is_false(ok)
    assert.matches("^map: cannot suspend a coroutine that casync does not manage", err)
  end))
end)
