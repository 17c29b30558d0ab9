-- tcp.c, server.c: casync.tcp.connect and casync.tcp.listen on loopback:
-- handlers per connection, port 0, IPv4 and IPv6, refused and timed-out
-- connects, closing servers, 10,000 connections, running out of fds.
local casync = require "casync"

local errmsg = helper.errmsg

-- Like async, and afterwards no stream or server is left open or pinned.
local function nasync(fn, timeout)
  return async(function()
    fn()
    casync.sleep(0.002) -- let libuv run the close callbacks
    local st = casync.stream._stats()
    assert(st.open == 0, "streams left open: " .. st.open)
    assert(st.pins == 0, "anchors left pinned: " .. st.pins)
    assert(st.streams == 0, "stream handles not freed: " .. st.streams)
    assert(st.servers == 0, "server handles not freed: " .. st.servers)
  end, timeout)
end

local function echo(s)
  while true do
    local line = s:read_line()
    if not line then return end
    assert(s:write(line .. "\n"))
  end
end

-- script(name, code) -> path of a Lua file that finds this build of casync
local function script(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(("package.path = %q .. package.path; package.cpath = %q .. package.cpath\n")
    :format(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;",
            helper.build .. "/lib/?.so;"))
  f:write(code)
  f:close()
  return path
end

local function hard_nofile()
  local _, out = helper.sh("ulimit -Hn")
  out = out:match("%S+")
  return out == "unlimited" and math.huge or tonumber(out)
end

describe("tcp.listen", function()
  it("port 0 picks a free port that port() and address() report", nasync(function()
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, echo))
    local port = srv:port()
    assert.is_true(math.type(port) == "integer" and port > 0 and port < 65536)
    local host, p = srv:address()
    assert.equal("127.0.0.1", host)
    assert.equal(port, p)
    assert.equal("casync.Server (tcp, listening)", tostring(srv))
    srv:close()
    assert.equal("casync.Server (tcp, closed)", tostring(srv))
    assert.is_true(srv:closed())
    srv:close() -- again: nothing
  end))

  it("runs each connection's handler in its own task", nasync(function()
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, echo))
    local clients = {}
    for i = 1, 50 do
      clients[i] = function()
        local c <close> = assert(casync.tcp.connect("127.0.0.1", srv:port()))
        for j = 1, 10 do
          local msg = ("client %d line %d"):format(i, j)
          assert(c:write(msg .. "\n"))
          assert.equal(msg, c:read_line())
        end
        return i
      end
    end
    local results = casync.gather(clients)
    assert.equal(50, results.n)
    assert.equal(50, srv:stats().accepted)
    srv:close()
  end))

  it("closes the connection when its handler returns", nasync(function()
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
      s:write("bye\n")
    end))
    local c <close> = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert.equal("bye", c:read_line())
    assert.is_nil(c:read())
    casync.sleep(0.005)
    assert.equal(0, srv:connections())
    srv:close()
  end))

  it("refuses a port that is taken", nasync(function()
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, echo))
    local other, err = casync.tcp.listen("127.0.0.1", srv:port(), echo)
    assert.is_nil(other)
    assert.equal("io", err.kind)
    assert.equal("EADDRINUSE", err.code)
    assert.equal("listen: address already in use", err.message)
    srv:close()
  end))

  it("close() stops accepting; the running handlers go on", nasync(function()
    local proceed = casync.event()
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
      proceed:wait()
      s:write("still served\n")
    end))
    local port = srv:port()
    local c <close> = assert(casync.tcp.connect("127.0.0.1", port))
    casync.sleep(0.005)
    assert.equal(1, srv:connections())
    srv:close()
    local c2, err = casync.tcp.connect("127.0.0.1", port)
    assert.is_nil(c2)
    assert.equal("ECONNREFUSED", err.code)
    proceed:set()
    assert.equal("still served", c:read_line())
  end))

  it("close{cancel = true} also cancels the running handlers", nasync(function()
    local tasks, cancelled = {}, 0
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
      tasks[#tasks + 1] = casync.current()
      local ok, err = pcall(s.read, s)
      if not ok and err.kind == "cancelled" then cancelled = cancelled + 1 end
      error(err, 0)
    end))
    local cs = {}
    for i = 1, 5 do cs[i] = assert(casync.tcp.connect("127.0.0.1", srv:port())) end
    casync.sleep(0.01)
    assert.equal(5, srv:connections())
    srv:close{cancel = true}
    casync.sleep(0.005)
    assert.equal(5, cancelled)
    for _, t in ipairs(tasks) do assert.is_true(t:cancelled()) end
    for _, c in ipairs(cs) do
      assert.is_nil(c:read()) -- their streams were closed
      c:close()
    end
  end))

  it("is usable as a <close> variable", nasync(function()
    local srv
    do
      local s <close> = assert(casync.tcp.listen("127.0.0.1", 0, echo))
      srv = s
    end
    assert.is_true(srv:closed())
  end))

  it("resolves a host name to listen on", nasync(function()
    local srv = assert(casync.tcp.listen("localhost", 0, echo))
    local host = srv:address()
    assert.is_truthy(host == "127.0.0.1" or host == "::1", host)
    local c <close> = assert(casync.tcp.connect("localhost", srv:port()))
    assert(c:write("via localhost\n"))
    assert.equal("via localhost", c:read_line())
    srv:close()
  end))
end)

describe("tcp and luv", function()
  it("uv.walk sees open streams and servers as casync's, and nothing breaks", nasync(function()
    local ok, uv = pcall(require, "luv")
    if not ok then return pending("luv is not installed") end
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, echo))
    local c <close> = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert(c:write("before\n"))
    assert.equal("before", c:read_line())
    local seen = 0
    uv.walk(function(h)
      local class = tostring(h):match("casync (%a+) handle")
      if class == "stream" or class == "server" then
        seen = seen + 1
        assert.is_true(h:is_closing()) -- so loops that close everything skip it
        h:close()                      -- and closing it does nothing
      end
    end)
    assert.equal(3, seen) -- the listener and both ends of the connection
    assert(c:write("after\n"))
    assert.equal("after", c:read_line())
    srv:close()
  end))
end)

describe("tcp.connect", function()
  it("connects over IPv6 loopback", nasync(function()
    local srv = casync.tcp.listen("::1", 0, echo)
    if not srv then return pending("no IPv6 loopback here") end
    assert.equal("::1", srv:address())
    local c <close> = assert(casync.tcp.connect("::1", srv:port()))
    assert.equal("::1", c:peername())
    assert(c:write("six\n"))
    assert.equal("six", c:read_line())
    srv:close()
  end))

  it("returns nil and ECONNREFUSED for a closed port", nasync(function()
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, echo))
    local port = srv:port()
    srv:close()
    casync.sleep(0.002)
    local c, err = casync.tcp.connect("127.0.0.1", port)
    assert.is_nil(c)
    assert.equal("io", err.kind)
    assert.equal("ECONNREFUSED", err.code)
    -- the message names the address, as Go's "dial tcp 127.0.0.1:..." does
    assert.equal("connect 127.0.0.1:" .. port .. ": connection refused", err.message)
    assert.equal("io: connect 127.0.0.1:" .. port .. ": connection refused", tostring(err))
    assert.equal("127.0.0.1", err.host)
    assert.equal(port, err.port)
    assert.is_true(casync.is_error(err, "io"))
  end))

  it("returns nil, err for a name that does not resolve", nasync(function()
    local c, err = casync.tcp.connect("nonexistent.invalid", 80, {timeout = 5})
    assert.is_nil(c)
    assert.is_truthy(err.kind == "timeout" or err.code:match("^EAI_"), err.code)
    assert.matches("^connect nonexistent%.invalid:80: ", err.message)
    assert.equal("nonexistent.invalid", err.host)
  end))

  it("names an IPv6 address in brackets in its errors", nasync(function()
    local c, err = casync.tcp.connect("::1", 1)
    assert.is_nil(c)
    assert.matches("^connect %[::1%]:1: ", err.message)
  end))

  it("times out with kind 'timeout' (opts.timeout)", nasync(function()
    -- a listener that never accepts: once its queue is full the kernel
    -- drops new SYNs, and connecting hangs
    local ok, uv = pcall(require, "luv")
    if not ok then return pending("luv is not installed") end
    local l = uv.new_tcp()
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen(1, function() end))
    local port = l:getsockname().port
    local held, err, dt = {}, nil, nil
    for _ = 1, 64 do
      local t0 = casync.now()
      local c, e = casync.tcp.connect("127.0.0.1", port, {timeout = 0.1})
      if not c then
        err, dt = e, casync.now() - t0
        break
      end
      held[#held + 1] = c
    end
    for _, c in ipairs(held) do c:close() end
    l:close()
    assert.is_truthy(err, "64 connections to a full listen queue")
    assert.equal("timeout", err.kind)
    assert.equal("connect 127.0.0.1:" .. port .. ": timed out after 0.1 s", err.message)
    assert.is_true(dt >= 0.09 and dt < 2, "took " .. dt)
  end))

  it("a task cancelled while connecting leaves nothing open", nasync(function()
    local ok, uv = pcall(require, "luv")
    if not ok then return pending("luv is not installed") end
    local l = uv.new_tcp()
    assert(l:bind("127.0.0.1", 0))
    assert(l:listen(1, function() end))
    local port = l:getsockname().port
    local held, hung = {}, nil
    for _ = 1, 64 do
      local t = casync.spawn(casync.tcp.connect, "127.0.0.1", port)
      casync.sleep(0.02)
      if not t:done() then
        hung = t
        break
      end
      held[#held + 1] = t:result()
    end
    assert.is_truthy(hung)
    hung:cancel()
    local okw, e = pcall(hung.wait, hung)
    assert.is_false(okw)
    assert.equal("cancelled", e.kind)
    for _, c in ipairs(held) do c:close() end
    l:close()
  end))

  it("checks its arguments", nasync(function()
    assert.matches("bad argument #1 to 'connect' %(string expected, got no value%)",
                   errmsg(function() return casync.tcp.connect() end))
    assert.matches("bad argument #2 to 'connect' %(number expected, got string%)",
                   errmsg(function() return casync.tcp.connect("127.0.0.1", "http") end))
    assert.matches("bad argument #2 to 'connect' %(port must be in 0..65535%)",
                   errmsg(function() return casync.tcp.connect("127.0.0.1", 70000) end))
    assert.matches("bad argument #3 to 'connect' %(table expected, got number%)",
                   errmsg(function() return casync.tcp.connect("127.0.0.1", 80, 5) end))
    assert.matches("bad argument #3 to 'connect' %(opts.timeout must be a number%)",
                   errmsg(function() return casync.tcp.connect("127.0.0.1", 80, {timeout = "x"}) end))
    assert.matches("bad argument #3 to 'listen' %(function expected, got nil%)",
                   errmsg(function() return casync.tcp.listen("127.0.0.1", 0, nil) end))
    assert.matches("bad argument #4 to 'listen' %(opts.backlog must be positive%)",
                   errmsg(function() return casync.tcp.listen("127.0.0.1", 0, echo, {backlog = 0}) end))
    assert.matches("bad argument #2 to 'listen' %(port must be in 0..65535%)",
                   errmsg(function() return casync.tcp.listen("127.0.0.1", -1, echo) end))
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, setmetatable({}, {
      __call = function(_, s) s:write("callable\n") end})))
    local c <close> = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert.equal("callable", c:read_line())
    srv:close()
    assert.matches("port: attempt to use a closed server", errmsg(function() return srv:port() end))
    assert.matches("bad argument #1 to 'close' %(table expected, got number%)",
                   errmsg(function() return srv:close(1) end))
  end))

  it("must be called inside a task", function()
    assert.matches("connect: must be called inside a task",
                   errmsg(casync.tcp.connect, "127.0.0.1", 80))
    assert.matches("connect: must be called inside a task",
                   errmsg(casync.pipe.connect, "/tmp/nothing.sock"))
  end)
end)

describe("tcp under load", function()
  it("holds 10,000 concurrent connections on one server", function()
    local n = 10000
    local need = n + 200
    local hard = hard_nofile()
    if hard < need then
      return pending(("the hard fd limit (%s) is below %d"):format(hard, need))
    end
    local portfile = os.tmpname()
    os.remove(portfile)
    local server = script([[
      local casync = require "casync"
      local n, portfile = tonumber(arg[1]), arg[2]
      casync.run(function()
        local open, max, all = 0, 0, casync.event()
        local srv = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
          open = open + 1
          if open > max then max = open end
          if s:read_line() == "hi" then s:write("ok\n") end
          s:read() -- until the client closes
          open = open - 1
          if open == 0 and max >= n then all:set() end
        end, {backlog = 4096}))
        local f = assert(io.open(portfile .. ".tmp", "w"))
        f:write(srv:port())
        f:close()
        os.rename(portfile .. ".tmp", portfile)
        local ok = pcall(casync.wait_for, function() all:wait() end, 60)
        print("max", max, "accepted", srv:stats().accepted, ok)
        srv:close()
      end)
    ]])
    local client = script([[
      local casync = require "casync"
      local n, portfile = tonumber(arg[1]), arg[2]
      casync.run(function()
        local port
        for _ = 1, 2000 do
          local f = io.open(portfile)
          if f then port = tonumber(f:read("a")); f:close(); break end
          casync.sleep(0.005)
        end
        assert(port, "no port from the server")
        local conns, tasks, sem = {}, {}, casync.semaphore(256)
        for i = 1, n do
          tasks[i] = function()
            local p = sem:acquire()
            local c = assert(casync.tcp.connect("127.0.0.1", port, {timeout = 30}))
            assert(c:write("hi\n"))
            assert(c:read_line(nil, 30) == "ok")
            p:release()
            conns[i] = c
          end
        end
        casync.gather(tasks)
        local held = 0
        for _ in pairs(conns) do held = held + 1 end
        print("held", held)
        for _, c in pairs(conns) do c:close() end
      end)
    ]])
    local code, out, err = helper.sh(([[
      ulimit -n %d 2>/dev/null || ulimit -n %d
      lua5.4 %s %d %s > %s.out & srv=$!
      lua5.4 %s %d %s
      rc=$?
      wait $srv; src=$?
      cat %s.out; rm -f %s.out %s
      exit $((rc + src))
    ]]):format(need, hard, server, n, portfile, portfile, client, n, portfile,
               portfile, portfile, portfile))
    os.remove(server)
    os.remove(client)
    assert.equal(0, code, err)
    assert.matches("held\t" .. n, out)
    assert.matches("max\t" .. n .. "\taccepted\t" .. n .. "\ttrue", out)
  end)

  it("keeps serving after running out of file descriptors (EMFILE)", function()
    local code, out, err = helper.sh("ulimit -n 64 && lua5.4 " .. script([[
      local casync = require "casync"
      casync.run(function()
        local srv = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
          local l = s:read_line()
          if l then s:write(l .. "\n") end
          s:read() -- hold it until the client closes
        end))
        local port = srv:port()
        local held, why = {}, nil
        -- 1. connect until something runs out of descriptors
        for i = 1, 200 do
          local c, err = casync.tcp.connect("127.0.0.1", port, {timeout = 2})
          if not c then why = err.code; break end
          held[#held + 1] = c
          c:write("x\n")
          local l, e = c:read_line(nil, 2)
          if l ~= "x" then why = e and e.code or "dropped"; break end
        end
        -- 2. take every descriptor but one: the client's socket gets it and
        -- the server's accept fails with EMFILE (libuv then drops that
        -- connection instead of spinning on it)
        table.remove(held):close()
        casync.sleep(0.02) -- the server closes its side too
        local files = {}
        while true do
          local f = io.open("/dev/null")
          if not f then break end
          files[#files + 1] = f
        end
        table.remove(files):close()
        local c, cerr = casync.tcp.connect("127.0.0.1", port, {timeout = 2})
        local dropped = "refused " .. tostring(cerr)
        if c then
          c:write("y\n")
          local l = c:read_line(nil, 0.5)
          dropped = l == nil and "dropped" or "served"
          c:close()
        end
        for _, f in ipairs(files) do f:close() end
        for _, h in ipairs(held) do h:close() end
        casync.sleep(0.05)
        -- 3. descriptors are free again: it serves as before
        for i = 1, 20 do
          local c2 = assert(casync.tcp.connect("127.0.0.1", port, {timeout = 2}))
          assert(c2:write("again " .. i .. "\n"))
          assert(c2:read_line(nil, 2) == "again " .. i)
          c2:close()
        end
        print("held", #held, why, dropped, "recovered")
        srv:close()
      end)
    ]]))
    assert.equal(0, code, err)
    assert.matches("recovered", out)
    -- stage 1 stopped on an error (EMFILE on either side), stage 2 was dropped
    assert.matches("^held\t%d+\t%S+\tdropped\trecovered", out)
  end)
end)

describe("tcp.connect races a name's addresses (Happy Eyeballs, RFC 8305)", function()
  -- In a mount namespace of its own, /etc/hosts gives dual.test both ::1
  -- (first) and 127.0.0.1; an address that takes no connection is a
  -- listener whose queue is full (spec/peers/blackhole.py).
  local script = [==[
    local casync = require "casync"
    local PEERS = ...
    local function streams()
      collectgarbage()
      return casync._debug and (casync._debug().open.stream or 0) or 0
    end
    local function blackhole(host, port)
      local p = assert(casync.process.spawn({"python3", PEERS .. "/blackhole.py", host,
        tostring(port)}, {stdin = "pipe", stdout = "pipe", env = {LD_PRELOAD = false}}))
      assert(p.stdout:read_line() == "ready")
      return p
    end
    local function release(p) p.stdin:close(); p:wait(); p.stdout:close() end
    casync.run(function()
      local v4, v6, port
      repeat
        v4 = assert(casync.tcp.listen("127.0.0.1", 0, function(s) s:write("v4\n") end))
        port = v4:port()
        v6 = casync.tcp.listen("::1", port, function(s) s:write("v6\n") end)
        if not v6 then v4:close() end
      until v6
      local t0 = casync.now()
      local c = assert(casync.tcp.connect("dual.test", port))
      print("both", c:read_line(), casync.now() - t0 < 0.2)
      c:close()
      v6:close()
      t0 = casync.now()
      c = assert(casync.tcp.connect("dual.test", port))
      print("v6 refused", c:read_line(), casync.now() - t0 < 0.2)
      c:close()
      local bh6 = blackhole("::1", port)
      t0 = casync.now()
      c = assert(casync.tcp.connect("dual.test", port, {timeout = 5}))
      local dt = casync.now() - t0
      print("v6 blackholed", c:read_line(), dt >= 0.25 and dt < 1.5)
      c:close()
      v4:close()
      casync.sleep(0.01)
      local bh4 = blackhole("127.0.0.1", port)
      t0 = casync.now()
      local c2, err = casync.tcp.connect("dual.test", port, {timeout = 0.6})
      dt = casync.now() - t0
      print("both blackholed", c2, err.kind, dt >= 0.6 and dt < 2)
      local t = casync.spawn(casync.tcp.connect, "dual.test", port)
      casync.sleep(0.3) -- both attempts under way
      t:cancel()
      local ok, e = pcall(t.wait, t)
      print("cancelled", ok, e.kind)
      release(bh6)
      release(bh4)
      casync.sleep(0.05)
      print("streams left", streams())
    end)
  ]==]

  it("prefers the first family, falls back at once or after 250 ms, leaks nothing", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local hosts = assert(io.open(dir .. "/hosts", "w"))
    hosts:write("127.0.0.1 localhost\n::1 dual.test\n127.0.0.1 dual.test\n")
    hosts:close()
    local f = assert(io.open(dir .. "/he.lua", "w"))
    f:write(("package.path = %q .. package.path; package.cpath = %q .. package.cpath\n")
      :format(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;",
              helper.build .. "/lib/?.so;"), script)
    f:close()
    local code, out, err = helper.sh(("unshare -m sh -c 'mount --bind %s/hosts /etc/hosts && " ..
      "lua5.4 %s/he.lua %s/spec/peers'"):format(dir, dir, helper.root))
    os.execute("rm -rf " .. dir)
    if code ~= 0 and err:find("unshare", 1, true) then
      return pending("no mount namespace here: " .. err)
    end
    assert.equal(0, code, err)
    assert.equal(table.concat({
      "both\tv6\ttrue",
      "v6 refused\tv4\ttrue",
      "v6 blackholed\tv4\ttrue",
      "both blackholed\tnil\ttimeout\ttrue",
      "cancelled\tfalse\tcancelled",
      "streams left\t0", ""}, "\n"), out)
  end)

  it("listens on a name without blocking the loop (in a task)", nasync(function()
    local ticks = 0
    local ticker = casync.spawn(function()
      while true do casync.sleep(0.001) ticks = ticks + 1 end
    end)
    local srv = assert(casync.tcp.listen("localhost", 0, echo))
    assert.equal("127.0.0.1", (srv:address()))
    local c <close> = assert(casync.tcp.connect("localhost", srv:port()))
    c:write("named\n")
    assert.equal("named", c:read_line())
    c:close()
    srv:close()
    ticker:cancel()
    pcall(ticker.wait, ticker)
    local s2, err = casync.tcp.listen("no-such-host.invalid", 0, echo)
    assert.is_nil(s2)
    assert.equal("io", err.kind)
    assert.truthy(err.message:find("^listen: "))
  end))

  it("a name outside a task is refused; a numeric address works anywhere", function()
    local ok, err = pcall(casync.tcp.listen, "localhost", 0, echo)
    assert.is_false(ok)
    assert.truthy(err:find("a host name is resolved without blocking the loop", 1, true))
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, echo))
    srv:close()
    srv = assert(casync.tcp.listen("::1", 0, echo))
    srv:close()
  end)
end)
