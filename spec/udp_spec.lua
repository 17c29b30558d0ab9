-- udp.c: casync.udp.bind, send and recv (waits: timeouts, cancellation),
-- connected sockets, truncation, read-ahead, broadcast and multicast (in a
-- network namespace of their own: nothing leaves the machine), and
-- Python's socket module as the peer both ways.
local casync = require "casync"

-- The message of the error fn raises, without the position.
local function errmsg(fn)
  return (tostring(helper.errmsg(fn)):gsub("^[^:]*:%d+: ", ""))
end

local function peer(argv)
  local p = assert(casync.process.spawn(argv, {stdout = "pipe", stderr = "ignore",
    env = {LD_PRELOAD = false}})) -- peers run without the sanitizers
  local line = p.stdout:read_line(nil, 10)
  assert(line, "the peer printed no port")
  return p, tonumber(line)
end

describe("udp", function()
  it("binds, sends and receives between two sockets", async(function()
    local a <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local b <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local ah, ap = a:sockname()
    local _, bp = b:sockname()
    assert.equal("127.0.0.1", ah)
    assert.is_true(ap > 0)
    assert.equal("casync.UdpSocket (open)", tostring(a))
    for i = 1, 5 do assert.is_true(b:send("msg " .. i, ah, ap)) end
    for i = 1, 5 do
      local data, host, port, cut = a:recv()
      assert.equal("msg " .. i, data)
      assert.equal("127.0.0.1", host)
      assert.equal(bp, port)
      assert.is_false(cut)
    end
    assert(b:send("", ah, ap)) -- an empty datagram is one too
    assert.equal("", (a:recv()))
    assert(b:send("by name", "localhost", ap))
    assert.equal("by name", (a:recv()))
    a:close()
    assert.is_true(a:closed())
    assert.equal("casync.UdpSocket (closed)", tostring(a))
    a:close() -- again: nothing
  end))

  it("IPv6", async(function()
    local a <close> = assert(casync.udp.bind("::1", 0))
    local b <close> = assert(casync.udp.bind("::1", 0))
    local ah, ap = a:sockname()
    assert.equal("::1", ah)
    assert(b:send("six", "::1", ap))
    local data, host = a:recv()
    assert.equal("six", data)
    assert.equal("::1", host)
  end))

  it("a datagram longer than max_size is cut and flagged", async(function()
    local a <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local b <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local _, ap = a:sockname()
    b:send("0123456789", "127.0.0.1", ap)
    local data, _, _, cut = a:recv(4)
    assert.equal("0123", data)
    assert.is_true(cut)
    local big = string.rep("x", 60000)
    b:send(big, "127.0.0.1", ap)
    data, _, _, cut = a:recv()
    assert.equal(big, data)
    assert.is_false(cut)
    local ok, err = b:send(string.rep("x", 70000), "127.0.0.1", ap)
    assert.is_nil(ok)
    assert.equal("EMSGSIZE", err.code)
  end))

  it("reads ahead a bounded number; the kernel keeps the rest in order", async(function()
    local a <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local b <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local _, ap = a:sockname()
    assert(b:send("first", "127.0.0.1", ap))
    assert.equal("first", (a:recv())) -- reading ahead from now on
    for i = 1, 200 do assert(b:send("n" .. i, "127.0.0.1", ap)) end
    casync.sleep(0.02)
    for i = 1, 200 do assert.equal("n" .. i, (a:recv(nil, 2))) end
  end))

  it("connected sockets send without an address and hear only the peer", async(function()
    local a <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local b <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local other <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local _, ap = a:sockname()
    local _, bp = b:sockname()
    assert.is_true(b:connect("127.0.0.1", ap))
    assert.same({"127.0.0.1", ap}, {b:peername()})
    assert(b:send("connected"))
    assert.equal("connected", (a:recv()))
    assert(other:send("stranger", "127.0.0.1", bp))
    assert(a:send("peer", "127.0.0.1", bp))
    assert.equal("peer", (b:recv(nil, 1)))
    assert.is_true(b:disconnect())
    local ok, err = b:peername()
    assert.is_nil(ok)
    assert.equal("ENOTCONN", err.code)
    assert(b:connect("localhost", ap)) -- a name, in a task
  end))

  it("recv is a wait: a timeout, cancellation, close, one receiver at a time", async(function()
    local a <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local data, err = a:recv(nil, 0.05)
    assert.is_nil(data)
    assert.equal("timeout", err.kind)
    assert.equal("recv: timed out after 0.05 s", err.message)
    a:set_timeout(0.02)
    assert.equal("timeout", select(2, a:recv()).kind)
    a:set_timeout(nil)
    local t = casync.spawn(function() return a:recv() end)
    casync.sleep(0.01)
    assert.equal("recv: another task is already receiving on this socket",
      errmsg(function() return a:recv() end))
    t:cancel()
    assert.is_false(pcall(t.wait, t))
    assert.is_true(t:cancelled())
    t = casync.spawn(function() return a:recv() end)
    casync.sleep(0.01)
    a:close()
    local ok, d, e = pcall(t.wait, t)
    assert.is_true(ok)
    assert.is_nil(d)
    assert.equal("closed", e.kind)
  end))

  it("checks its arguments; names need a task, addresses do not", function()
    assert.equal("bad argument #2 to 'bind' (port must be in 0..65535)",
      errmsg(function() return casync.udp.bind("127.0.0.1", 70000) end))
    assert.equal("bad argument #1 to 'bind' (string expected, got no value)",
      errmsg(function() return casync.udp.bind() end))
    assert.truthy(errmsg(function() return casync.udp.bind("localhost", 0) end)
      :find("bind: a host name is resolved without blocking the loop", 1, true))
    local s = assert(casync.udp.bind("127.0.0.1", 0))
    assert.equal("bad argument #1 to 'set_ttl' (ttl must be in 0..255)",
      errmsg(function() return s:set_ttl(300) end))
    assert.equal("bad argument #1 to 'set_broadcast' (boolean expected, got number)",
      errmsg(function() return s:set_broadcast(1) end))
    assert.equal("bad argument #1 to 'recv' (max_size must be positive)",
      errmsg(function() return s:recv(0) end))
    assert.truthy(errmsg(function() return s:recv() end):find("must be called inside a task"))
    assert.truthy(errmsg(function() return s:send("x", "127.0.0.1") end)
      :find("bad argument #3 to 'send' (number expected, got no value)", 1, true))
    s:close()
    assert.equal("recv: attempt to use a closed socket", errmsg(function() return s:recv() end))
  end)

  it("binds to a name in a task", async(function()
    local s <close> = assert(casync.udp.bind("localhost", 0))
    assert.equal("127.0.0.1", (s:sockname()))
  end))

  it("Python both ways: a casync client of a Python server, and the reverse", async(function()
    for _, fam in ipairs{"inet", "inet6"} do
      local p, port = peer({"python3", "spec/peers/udp_python.py", "echo", fam})
      local host = fam == "inet" and "127.0.0.1" or "::1"
      local c <close> = assert(casync.udp.bind(host, 0))
      for i = 1, 3 do
        assert(c:send("ping " .. i, host, port))
        local data, from, fport = c:recv(nil, 5)
        assert.equal("py: ping " .. i, data)
        assert.equal(host, from)
        assert.equal(port, fport)
      end
      c:send("quit", host, port)
      assert.equal(0, p:wait())
      p.stdout:close()
    end
    local s <close> = assert(casync.udp.bind("127.0.0.1", 0))
    local _, port = s:sockname()
    local p = assert(casync.process.spawn({"python3", "spec/peers/udp_python.py", "send",
      "127.0.0.1", tostring(port), "20"}, {stdout = "pipe", env = {LD_PRELOAD = false}}))
    local got, from, fport = {}, nil, nil
    for i = 1, 20 do
      local data
      data, from, fport = s:recv(nil, 5)
      got[i] = data
    end
    assert.equal("dgram 0", got[1])
    assert.equal("dgram 19", got[20])
    assert(s:send("casync got 20", from, fport))
    assert.equal("casync got 20", p.stdout:read_line(nil, 5))
    assert.equal(0, p:wait())
    p.stdout:close()
  end))
end)

describe("udp broadcast and multicast", function()
  -- in a network namespace of its own with only the loopback up (multicast
  -- on and routed to it): nothing can leave the machine
  local script = [[
    local casync = require "casync"
    casync.run(function()
      local r <close> = assert(casync.udp.bind("0.0.0.0", 0, {reuseaddr = true}))
      local _, port = r:sockname()
      local s <close> = assert(casync.udp.bind("127.0.0.1", 0))
      -- broadcast: refused until asked for
      local ok, err = s:send("b0", "127.255.255.255", port)
      print("broadcast off", ok, err and err.code)
      assert(s:set_broadcast(true))
      print("broadcast on", s:send("b1", "127.255.255.255", port), (r:recv(nil, 2)))
      -- multicast
      assert(r:join("239.1.2.3", "127.0.0.1"))
      assert(s:set_multicast_interface("127.0.0.1"))
      assert(s:set_multicast_ttl(1))
      assert(s:set_multicast_loop(true))
      assert(s:send("m1", "239.1.2.3", port))
      print("multicast", (r:recv(nil, 2)))
      assert(r:leave("239.1.2.3", "127.0.0.1"))
      assert(s:send("m2", "239.1.2.3", port))
      local d, e = r:recv(nil, 0.3)
      print("after leave", d, e and e.kind)
    end)
  ]]

  it("broadcast needs set_broadcast; multicast needs join", function()
    local setup = ("package.path = %q .. package.path; package.cpath = %q .. package.cpath; ")
      :format(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;",
              helper.build .. "/lib/?.so;")
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(setup, script)
    f:close()
    local code, out, err = helper.sh("unshare -n sh -c 'ip link set lo up && " ..
      "ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && lua5.4 " .. path .. "'")
    os.remove(path)
    if code ~= 0 and err:find("unshare", 1, true) then
      return pending("no network namespace here: " .. err)
    end
    assert.equal(0, code, err)
    assert.equal(table.concat({
      "broadcast off\tnil\tEACCES",
      "broadcast on\ttrue\tb1",
      "multicast\tm1",
      "after leave\tnil\ttimeout", ""}, "\n"), out)
  end)
end)
