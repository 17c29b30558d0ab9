-- debug.c: casync.tasks, task:info, casync.dump, casync.debug, stuck tasks.
local casync = require "casync"
local async = helper.async

-- waiting_on of task t once it has parked
local function waits(t)
  return t:info().waiting_on
end

describe("task:info", function()
  it("says what each kind of wait waits on, in words", async(function()
    local ch, ch2, q = casync.channel(), casync.channel(), casync.queue(1)
    local lock, sem, ev = casync.lock(), casync.semaphore(2), casync.event()
    q:put("full")
    local p1, p2 = sem:acquire(), sem:acquire()
    local holder = casync.spawn({name = "writer"}, function()
      local p <close> = lock:acquire()
      casync.sleep(10)
    end)
    local long = casync.spawn(casync.sleep, 10)
    local tasks = {
      sleep = casync.spawn(casync.sleep, 5),
      recv = casync.spawn(function() ch:recv() end),
      send = casync.spawn(function() ch2:send(1) end),
      put = casync.spawn(function() q:put(2) end),
      lock = casync.spawn(function() lock:acquire() end),
      sem = casync.spawn(function() sem:acquire() end),
      event = casync.spawn(function() ev:wait() end),
      wait = casync.spawn(function() long:wait() end),
      gather = casync.spawn(function() casync.gather(function() casync.sleep(10) end) end),
      select = casync.spawn(function() casync.select({{ev, "wait"}, {lock, "acquire"}}) end),
    }
    casync.sleep(0.01)
    assert.matches("^sleep, [%d.]+ s left$", waits(tasks.sleep))
    assert.matches("^recv on channel#%d+ %(cap 0, 0 senders waiting%)$", waits(tasks.recv))
    assert.matches("^send on channel#%d+ %(cap 0, 0 receivers waiting%)$", waits(tasks.send))
    assert.matches("^put on queue#%d+ %(1 item, 0 getters waiting%)$", waits(tasks.put))
    assert.matches("^acquire lock#%d+ held by task #%d+ 'writer'$", waits(tasks.lock))
    assert.matches("^acquire semaphore#%d+ %(0 of 2 free, 1 waiting%)$", waits(tasks.sem))
    assert.matches("^wait on event#%d+$", waits(tasks.event))
    assert.matches("^task:wait%(%) for task #%d+$", waits(tasks.wait))
    assert.matches("^gather of 1 task %(1 still running%)$", waits(tasks.gather))
    assert.matches("^select on 2 cases: ", waits(tasks.select))
    assert.matches("acquire lock#%d+ held by task #%d+ 'writer'", waits(tasks.select))
    for _, t in pairs(tasks) do t:cancel() end
    holder:cancel()
    long:cancel()
    p1:release()
    p2:release()
    for _, t in pairs(tasks) do pcall(t.wait, t) end
    pcall(holder.wait, holder)
    pcall(long.wait, long)
  end))

  it("names reads and writes on streams by their peer", async(function()
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, function(s) s:read() end))
    local c <close> = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    local reader = casync.spawn(function() c:read() end)
    casync.sleep(0.01)
    assert.equal("read on tcp 127.0.0.1:" .. srv:port(), waits(reader))
    reader:cancel()
    pcall(reader.wait, reader)
    srv:close()
  end))

  it("has the task's id, name, state, parent, children, spawn site, traceback",
     async(function()
    local child
    local parent = casync.spawn({name = "parent"}, function()
      child = casync.spawn({name = "child"}, casync.sleep, 10)
      casync.sleep(10)
    end)
    casync.sleep(0.01)
    local i = parent:info()
    assert.equal(parent:id(), i.id)
    assert.equal("parent", i.name)
    assert.equal("waiting", i.state)
    assert.equal(casync.current():id(), i.parent)
    assert.equal(child, i.children[1])
    assert.matches("debug_spec.lua:%d+$", i.spawned_at)
    assert.matches("in function 'casync.sleep'", i.traceback)
    assert.equal("running", casync.current():info().state)
    parent:cancel()
    child:cancel()
    pcall(parent.wait, parent)
    pcall(child.wait, child)
    assert.equal("done", child:info().state)
  end))

  it("has the spawn site of a task that has not started yet (ready) too", async(function()
    local line = debug.getinfo(1, "l").currentline + 1
    local t = casync.spawn(function() return 1 end)
    local i = t:info()
    assert.equal("ready", i.state)
    assert.matches("debug_spec.lua:" .. line .. "$", i.spawned_at)
    assert.matches("spawned at [^\n]*debug_spec.lua:" .. line, casync.dump())
    t:wait()
  end))

  it("shows the task's context values and, in debug mode, its CPU time",
     async(function()
    local t = casync.context.with({request_id = "r-42"}, casync.spawn, function()
      local x = 0
      for i = 1, 2e5 do x = x + i end
      casync.sleep(10)
    end)
    casync.sleep(0)
    assert.same({request_id = "r-42"}, t:info().context)
    assert.is_nil(t:info().cpu)
    casync.debug{}
    local u = casync.spawn(function()
      local x = 0
      for i = 1, 2e6 do x = x + i end
      casync.sleep(10)
    end)
    casync.sleep(0.01)
    assert.is_true(u:info().cpu > 0)
    casync.debug(false)
    t:cancel()
    u:cancel()
    pcall(t.wait, t)
    pcall(u.wait, u)
  end))
end)

describe("casync.tasks and casync.dump", function()
  it("list every live task, as a tree by who spawned whom", async(function()
    local ch = casync.channel()
    local a = casync.spawn({name = "a"}, function()
      local b = casync.spawn({name = "b"}, function() ch:recv() end)
      b:wait()
    end)
    casync.sleep(0.01)
    local ids = {}
    for _, t in ipairs(casync.tasks()) do ids[t:id()] = true end
    assert.is_true(ids[a:id()])
    local text = casync.dump(io.open("/dev/null", "w"))
    local me = casync.current():id()
    assert.matches("task #" .. me .. " running", text)
    local ia = text:match("\n( +)task #%d+ 'a' waiting: task:wait%(%) for task #%d+ 'b'")
    local ib = text:match("\n( +)task #%d+ 'b' waiting: recv on channel#%d+")
    assert.is_true(#ib == #ia + 2, "b is not a child of a:\n" .. text)
    assert.matches("stack traceback:", text)
    assert.matches("%(%d+ tasks%)\n$", text)
    a:cancel()
    pcall(a.wait, a)
    ch:close()
    casync.sleep(0.01)
  end))
end)

describe("stuck tasks", function()
  local function two_locks()
    local a, b = casync.lock(), casync.lock()
    local t1 = casync.spawn({name = "one"}, function()
      local p <close> = a:acquire(); casync.sleep(0.01); local q <close> = b:acquire()
    end)
    local t2 = casync.spawn({name = "two"}, function()
      local p <close> = b:acquire(); casync.sleep(0.01); local q <close> = a:acquire()
    end)
    return t1, t2
  end

  it("the deadlock report names every blocked task and the cycle", function()
    local ok, err = pcall(casync.run, function()
      local t1 = two_locks()
      t1:wait()
    end)
    assert.is_false(ok)
    local text = tostring(err)
    assert.matches("^deadlock: the main task waits in task:wait%(%)", text)
    assert.matches("task #%d+ 'one' waits: acquire lock#%d+ held by task #%d+ 'two'", text)
    assert.matches("task #%d+ 'two' waits: acquire lock#%d+ held by task #%d+ 'one'", text)
    assert.matches("a wait%-for cycle:", text)
  end)

  it("debug mode reports a lock cycle as it forms, with both tracebacks",
     function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      casync.debug{}
      casync.run(function()
        local a, b = casync.lock(), casync.lock()
        casync.spawn({name = "one"}, function()
          local p <close> = a:acquire(); casync.sleep(0.01); local q <close> = b:acquire()
        end)
        casync.spawn({name = "two"}, function()
          local p <close> = b:acquire(); casync.sleep(0.01); local q <close> = a:acquire()
        end)
        casync.sleep(0.05)
        print("main went on")
      end)]])
    assert.equal(0, code)
    assert.matches("main went on", out)
    assert.matches("casync: deadlock: a wait%-for cycle:", err)
    -- both tracebacks, each at its acquire
    local _, n = err:gsub("in method 'acquire'", "")
    assert.is_true(n >= 2, err)
    assert.matches("task #%d+ 'one':\nstack traceback:", err)
    assert.matches("task #%d+ 'two':\nstack traceback:", err)
    -- and the leak report when run returned
    assert.matches("casync: tasks still blocked when run returned", err)
    assert.matches("'one' waits: acquire lock#%d+ held by task #%d+ 'two', spawned at", err)
  end)

  it("CASYNC_DEBUG=1: kill -USR1 dumps the tree to stderr, the program goes on",
     function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local casync = require "casync"
      casync.run(function()
        local ch = casync.channel()
        casync.spawn({name = "blocked"}, function() ch:recv() end)
        casync.sleep(0.01)
        io.stdout:write("ready\n"); io.stdout:flush()
        casync.sleep(0.5)
        print("still running")
        ch:close()
      end)]])
    f:close()
    local setup = ("LUA_PATH=%q LUA_CPATH=%q"):format(
      helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;;",
      helper.build .. "/lib/?.so;;")
    local code, out, err = helper.sh(("%s CASYNC_DEBUG=1 lua5.4 %s & pid=$!; " ..
      "sleep 0.3; kill -USR1 $pid; wait $pid"):format(setup, script))
    os.remove(script)
    assert.equal(0, code)
    assert.matches("still running", out)
    assert.matches("casync: the tasks of process %d+:", err)
    assert.matches("task #%d+ 'blocked' waiting: recv on channel#%d+", err)
  end)
end)

describe("the flight recorder (debug mode)", function()
  local cjson = require "cjson"

  -- runs script in a child with CASYNC_DEBUG=1; -> code, stderr, the
  -- flight recording's path (or nil) and its decoded JSON
  local function run(body)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local script = dir .. "/s.lua"
    local f = assert(io.open(script, "w"))
    f:write('local casync = require "casync"\n', body)
    f:close()
    local setup = ("LUA_PATH=%q LUA_CPATH=%q CASYNC_PS_DIR=%q"):format(
      helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;;",
      helper.build .. "/lib/?.so;;", dir)
    local code, _, err = helper.sh(("%s CASYNC_DEBUG=1 lua5.4 %s"):format(setup, script))
    local p = io.popen("ls " .. dir .. "/casync-*-flight.json 2>/dev/null")
    local path = p:read("l")
    p:close()
    local doc
    if path then
      local h = assert(io.open(path))
      doc = cjson.decode(h:read("a"))
      h:close()
    end
    os.execute("rm -rf " .. dir)
    return code, err, path, doc
  end

  -- the names of the tracks (tasks) in a Chrome trace document
  local function tracks(doc)
    local names = {}
    for _, e in ipairs(doc.traceEvents or doc) do
      if e.ph == "M" and e.args and e.args.name then names[#names + 1] = e.args.name end
    end
    return table.concat(names, "\n")
  end

  it("writes the last events when a deadlock ends the run", function()
    local code, err, path, doc = run([[
      casync.run(function()
        local a, b = casync.lock(), casync.lock()
        local one = casync.spawn({name = "one"}, function()
          local p <close> = a:acquire(); casync.sleep(0.01); local q <close> = b:acquire()
        end)
        casync.spawn({name = "two"}, function()
          local p <close> = b:acquire(); casync.sleep(0.01); local q <close> = a:acquire()
        end)
        one:wait()
      end)]])
    assert.not_equal(0, code)
    assert.is_string(path)
    assert.matches("a deadlock ended the run: the last %d+ scheduler events before it are in " ..
                   path:gsub("%p", "%%%0"), err)
    assert.matches("'one'", tracks(doc))
    assert.matches("'two'", tracks(doc))
  end)

  it("writes them when an error ends the run, and not after a good run", function()
    local code, err, path = run([[
      casync.run(function()
        casync.spawn({name = "worker"}, casync.sleep, 0.01):wait()
        error("boom")
      end)]])
    assert.not_equal(0, code)
    assert.is_string(path)
    assert.matches("an error ended the run", err)
    code, err, path = run([[casync.run(function() casync.sleep(0.01) end)]])
    assert.equal(0, code)
    assert.is_nil(path)
    assert.not_matches("ended the run", err)
  end)

  it("writes them once when the watchdog reports a task blocking the loop", function()
    local code, err, path, doc = run([[
      casync.run(function()
        casync.watchdog{threshold = 0.05}
        casync.spawn({name = "hog"}, function()
          local t = os.clock() while os.clock() - t < 0.2 do end
        end):wait()
        casync.sleep(0.01)
        casync.spawn({name = "hog2"}, function()
          local t = os.clock() while os.clock() - t < 0.2 do end
        end):wait()
      end)]])
    assert.equal(0, code)
    assert.is_string(path)
    local _, n = err:gsub("the watchdog saw a task block the loop", "")
    assert.equal(1, n)
    assert.matches("'hog'", tracks(doc))
  end)
end)

describe("casync ps PID (the runner)", function()
  local runner = helper.build .. "/casync"

  it("prints the task tree of a running program in debug mode", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local script = dir .. "/s.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
      local ch = casync.channel()
      casync.spawn({name = "stuck"}, function() ch:recv() end)
      io.stdout:write("ready\n"); io.stdout:flush()
      casync.sleep(1.5)
      ch:close()
    ]])
    f:close()
    local code, out, err = helper.sh(("cd %s && CASYNC_DEBUG=1 CASYNC_PS_DIR=%s %s s.lua " ..
      "> out.txt & pid=$!; " ..
      "for i in $(seq 1 100); do grep -q ready %s/out.txt 2>/dev/null && break; sleep 0.05; done; " ..
      "CASYNC_PS_DIR=%s %s ps $pid; s=$?; wait $pid; exit $s"):format(
      dir, dir, runner, dir, dir, runner))
    os.execute("rm -rf " .. dir)
    assert.equal(0, code, err)
    assert.matches("task #1 %(main%) waiting: sleep, [%d.]+ s left", out)
    assert.matches("task #%d+ 'stuck' waiting: recv on channel#%d+ %(cap 0, 0 senders waiting%)", out)
    assert.matches("s.lua:2", out)
    assert.matches("%[cpu [%d.]+ ms%]", out)
  end)

  it("says why when no casync program in debug mode has that pid", function()
    local code, _, err = helper.sh(("CASYNC_PS_DIR=/nonexistent %s ps 1"):format(runner))
    assert.equal(1, code)
    assert.matches("cannot reach process 1 at /nonexistent/casync%-1%.sock", err)
    assert.matches("CASYNC_DEBUG=1", err)
    code, _, err = helper.sh(runner .. " ps")
    assert.equal(2, code)
    assert.matches("usage: .* ps PID", err)
    code, _, err = helper.sh(runner .. " ps 99999999999")
    assert.equal(2, code)
    assert.matches("is not a process id", err)
  end)
end)
