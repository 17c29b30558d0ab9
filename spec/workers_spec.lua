-- workers = n of http.serve and tcp.listen (workers.c): n worker processes
-- on one port, SO_REUSEPORT, a supervisor that restarts a worker that dies
-- and forwards SIGTERM and SIGINT.  Each server runs in a child (the
-- runner): the process that calls serve becomes the supervisor.
local helper = require "spec.helper"
local casync = require "casync"
local P = casync.process
local async = helper.async
local RUNNER = helper.build .. "/casync"

local read_all = helper.read_all

-- the child: serves "worker pid" on a port it prints, once per worker
local script = [[
  local casync = require "casync"
  local function who() return casync.worker() .. " " .. casync.process.pid() end
  local srv
  if %q == "http" then
    srv = assert(casync.http.serve("127.0.0.1", 0, function() return who() end,
                                   {workers = 2}))
  else
    srv = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
      s:write(who() .. "\n")
      s:close()
    end, {workers = 2}))
  end
  print(casync.worker() .. " " .. casync.process.pid() .. " " .. srv:port())
  io.stdout:flush()
  casync.sleep(3600)
]]

local function start(kind)
  local p = assert(P.spawn({RUNNER, "-e", script:format(kind)},
                           {stdout = "pipe", stderr = "pipe"}))
  local workers, port = {}, nil
  for _ = 1, 2 do
    local line = assert(p.stdout:read_line(), "no line from a worker")
    local w, pid, pt = line:match("^(%d+) (%d+) (%d+)$")
    assert(w, line)
    workers[tonumber(w)] = tonumber(pid)
    port = tonumber(pt)
  end
  return p, workers, port
end

-- one request on a new connection: "worker pid"
local function ask(kind, port)
  local s = assert(casync.tcp.connect("127.0.0.1", port))
  if kind == "http" then
    s:write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  end
  local answer = read_all(s)
  s:close()
  local w, pid = answer:match("(%d+) (%d+)%s*$")
  return tonumber(w), tonumber(pid)
end

-- asks until both workers answered (connections are spread by the kernel)
local function both_serve(kind, port)
  local seen, n = {}, 0
  for _ = 1, 400 do
    local w, pid = ask(kind, port)
    if not seen[w] then seen[w] = pid; n = n + 1 end
    if n == 2 then return seen end
  end
  error("only one worker answered 400 connections")
end

local function gone(pid)
  return not os.execute("kill -0 " .. pid .. " 2>/dev/null")
end

describe("workers = n", function()
  for _, kind in ipairs({"http", "tcp"}) do
    it(kind .. ": both workers serve the same port, each its own process", async(function()
      local p, workers, port = start(kind)
      local seen = both_serve(kind, port)
      assert.equal(workers[1], seen[1])
      assert.equal(workers[2], seen[2])
      assert.are_not.equal(workers[1], workers[2])
      assert.are_not.equal(p.pid, workers[1])
      p:kill("TERM")
      local _, sig = p:wait()
      assert.equal("SIGTERM", sig)
      p:close()
    end, 20))
  end

  it("a worker killed is started again; SIGTERM ends them all", async(function()
    local p, workers, port = start("http")
    os.execute("kill -KILL " .. workers[1])
    local line = assert(p.stdout:read_line())
    local w, pid = line:match("^(%d+) (%d+) %d+$")
    assert.equal("1", w)
    assert.are_not.equal(workers[1], tonumber(pid))
    local seen = both_serve("http", port)
    assert.equal(tonumber(pid), seen[1])
    assert.equal(workers[2], seen[2])
    p:kill("TERM")
    local _, sig = p:wait()
    assert.equal("SIGTERM", sig)
    local err = read_all(p.stderr)
    assert.truthy(err:find("worker 1 (pid " .. workers[1] .. ") was killed by signal 9; starting it again", 1, true), err)
    p:close()
    assert.is_true(gone(tonumber(pid)))
    assert.is_true(gone(workers[2]))
  end, 20))

  it("SIGINT is forwarded: the workers end (Ctrl-C cancels their main task), then the supervisor", async(function()
    local p, workers = start("tcp")
    p:kill("INT")
    local _, sig = p:wait()
    assert.equal("SIGINT", sig)
    p:close()
    assert.is_true(gone(workers[1]))
    assert.is_true(gone(workers[2]))
  end, 20))

  it("a worker that exits with 0 is not started again; the supervisor then exits with 0", async(function()
    local p = assert(P.spawn({RUNNER, "-e", [[
      local casync = require "casync"
      local srv = assert(casync.tcp.listen("127.0.0.1", 0, function() end, {workers = 2}))
      srv:close()
    ]]}, {stdout = "pipe", stderr = "pipe"}))
    local code, sig = p:wait()
    assert.equal(0, code)
    assert.is_nil(sig)
    assert.equal("", read_all(p.stderr))
    p:close()
  end, 20))

  it("refuses once casync.thread runs threads (a forked process keeps one)", async(function()
    local p = assert(P.spawn({RUNNER, "-e", [[
      local casync = require "casync"
      casync.thread(function() end):wait()
      print(select(2, pcall(casync.tcp.listen, "127.0.0.1", 0, function() end, {workers = 2})))
    ]]}, {stdout = "pipe"}))
    local out = read_all(p.stdout)
    assert.equal(0, (p:wait()))
    p:close()
    assert.truthy(out:find("listen: workers: start them before casync.thread", 1, true), out)
  end, 20))

  it("a port in use gives nil and the error in the calling process, before any fork", async(function()
    -- in a child: this process may have started threads (other specs)
    local p = assert(P.spawn({RUNNER, "-e", [[
      local casync = require "casync"
      local srv = assert(casync.tcp.listen("127.0.0.1", 0, function() end))
      local r, e = casync.tcp.listen("127.0.0.1", srv:port(), function() end, {workers = 2})
      print(r, e.code)
      r, e = casync.http.serve("127.0.0.1", srv:port(), function() end, {workers = 2})
      print(r, e.code)
      srv:close()
    ]]}, {stdout = "pipe"}))
    local out = read_all(p.stdout)
    assert.equal(0, (p:wait()))
    p:close()
    assert.equal("nil\tEADDRINUSE\nnil\tEADDRINUSE\n", out)
  end, 20))

  it("checks its argument; workers = 1 is a plain server in this process", async(function()
    local ok, err = pcall(casync.tcp.listen, "127.0.0.1", 0, function() end, {workers = 0})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("opts.workers must be in 1..1024", 1, true))
    ok, err = pcall(casync.http.serve, "127.0.0.1", 0, function() end, {workers = "two"})
    assert.is_false(ok)
    local srv = assert(casync.http.serve("127.0.0.1", 0, function() return "one" end, {workers = 1}))
    assert.is_nil(casync.worker())
    srv:close()
  end))
end)
