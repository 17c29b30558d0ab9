-- stream.c: casync.Stream (reads, writes, backpressure, shutdown, close,
-- timeouts, cancellation, stdio) over TCP on loopback and Unix sockets.
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

-- pair() -> client, server-side stream, cleanup(): a TCP connection on
-- loopback whose server side stays open until cleanup().
local function pair()
  local ch, done = casync.channel(1), casync.event()
  local srv = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
    ch:send(s)
    done:wait()
  end))
  local c = assert(casync.tcp.connect("127.0.0.1", srv:port()))
  local s = ch:recv()
  return c, s, function()
    c:close()
    s:close()
    done:set()
    srv:close()
    casync.sleep(0)
  end
end

-- chunk(i, size) -> size bytes that say which chunk they are
local function chunk(i, size)
  return (("%07d\n"):format(i)):rep(size // 8)
end

describe("stream reads", function()
  it("read returns what is there, up to n bytes", nasync(function()
    local c, s, done = pair()
    assert(s:write("abcdef"))
    assert.equal("ab", c:read(2))
    assert.equal("cdef", c:read(100))
    assert(s:write("xyz"))
    assert.equal("xyz", c:read())
    assert.equal("", c:read(0))
    done()
  end))

  it("read returns nil (and no error) at the end of the stream", nasync(function()
    local c, s, done = pair()
    assert(s:write("last"))
    s:close()
    assert.equal("last", c:read())
    local r, err = c:read()
    assert.is_nil(r)
    assert.is_nil(err)
    assert.is_nil(c:read()) -- and again
    done()
  end))

  it("read_line splits on \\n and \\r\\n; the last line may lack it", nasync(function()
    local c, s, done = pair()
    assert(s:write("one\r\ntwo\n\nfour"))
    s:close()
    assert.equal("one", c:read_line())
    assert.equal("two", c:read_line())
    assert.equal("", c:read_line())
    assert.equal("four", c:read_line())
    assert.is_nil(c:read_line())
    done()
  end))

  it("read_line waits for a line that comes in pieces", nasync(function()
    local c, s, done = pair()
    local t = casync.spawn(function() return c:read_line() end)
    for _, piece in ipairs{"he", "ll", "o wor", "ld\r", "\nnext\n"} do
      assert(s:write(piece))
      casync.sleep(0.002)
    end
    assert.equal("hello world", t:wait())
    assert.equal("next", c:read_line())
    done()
  end))

  it("read_line refuses a line longer than max_len and keeps the data", nasync(function()
    local c, s, done = pair()
    assert(s:write("0123456789\nabc\n"))
    casync.sleep(0.01)
    local r, err = c:read_line(5)
    assert.is_nil(r)
    assert.equal("limit", err.kind)
    assert.equal("ETOOLONG", err.code)
    assert.matches("read_line: line longer than 5 bytes", tostring(err))
    assert.equal("0123456789\n", c:peek(11))
    assert.equal("0123456789", c:read_line(10))
    assert.equal("abc", c:read_line(3))
    -- a line of exactly max_len bytes with "\r\n" is fine
    assert(s:write("12345\r\n"))
    assert.equal("12345", c:read_line(5))
    -- no newline yet, but already too long: refused without waiting for more
    assert(s:write(("x"):rep(100)))
    r, err = c:read_line(50)
    assert.is_nil(r)
    assert.equal("limit", err.kind)
    done()
  end))

  it("read_until returns what comes before the delimiter", nasync(function()
    local c, s, done = pair()
    assert(s:write("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"))
    assert.equal("GET / HTTP/1.1\r\nHost: x", c:read_until("\r\n\r\n"))
    assert.equal("body", c:read(4))
    -- a delimiter split across writes
    local t = casync.spawn(function() return c:read_until("--end--", 100) end)
    assert(s:write("part one --en"))
    casync.sleep(0.005)
    assert(s:write("d-- after"))
    assert.equal("part one ", t:wait())
    assert.equal(" after", c:read(6))
    -- the stream ends before the delimiter: kind "eof", the data stays
    assert(s:write("no delimiter"))
    s:close()
    local r, err = c:read_until("\n\n")
    assert.is_nil(r)
    assert.equal("eof", err.kind)
    assert.equal("no delimiter", c:read())
    done()
  end))

  it("read_until refuses more than max_len bytes", nasync(function()
    local c, s, done = pair()
    assert(s:write(("a"):rep(20) .. "XY"))
    casync.sleep(0.01)
    local r, err = c:read_until("XY", 10)
    assert.is_nil(r)
    assert.equal("limit", err.kind)
    assert.equal(("a"):rep(20), c:read_until("XY", 20))
    done()
  end))

  it("read_exactly waits for n bytes", nasync(function()
    local c, s, done = pair()
    local t = casync.spawn(function() return c:read_exactly(10) end)
    for i = 0, 9 do
      assert(s:write(tostring(i)))
      casync.sleep(0.001)
    end
    assert.equal("0123456789", t:wait())
    assert.equal("", c:read_exactly(0))
    done()
  end))

  it("read_exactly fails with kind 'eof' and leaves what came", nasync(function()
    local c, s, done = pair()
    assert(s:write("short"))
    s:close()
    local r, err = c:read_exactly(10)
    assert.is_nil(r)
    assert.equal("eof", err.kind)
    assert.equal("EOF", err.code)
    assert.matches("after 5 of 10 bytes", err.message)
    assert.equal("short", c:read())
    assert.is_nil(c:read())
    done()
  end))

  it("peek, buffered and unread look at the buffer without waiting", nasync(function()
    local c, s, done = pair()
    assert.equal("", c:peek())
    assert.equal(0, c:buffered())
    assert(s:write("hello"))
    assert.equal("h", c:read(1))
    assert.equal(4, c:buffered())
    assert.equal("ell", c:peek(3))
    assert.equal("ello", c:peek())
    c:unread("xh")
    assert.equal("xhello", c:read())
    c:unread("line\nrest") -- unread into an empty buffer
    assert.equal("line", c:read_line())
    assert.equal("rest", c:read())
    done()
  end))

  it("works over a Unix-domain socket", nasync(function()
    local path = os.tmpname()
    os.remove(path)
    path = path .. ".sock"
    local srv = assert(casync.pipe.listen(path, function(s)
      local line = s:read_line()
      s:write(line:upper() .. "\n")
    end))
    assert.equal(path, srv:address())
    local c = assert(casync.pipe.connect(path))
    assert.equal("pipe", c:kind())
    assert.equal(path, c:peername())
    assert(c:write("ping\n"))
    assert.equal("PING", c:read_line())
    assert.is_nil(c:read()) -- the handler returned: its stream was closed
    c:close()
    -- the path is taken while the server listens
    local other, err = casync.pipe.listen(path, function() end)
    assert.is_nil(other)
    assert.equal("EADDRINUSE", err.code)
    srv:close()
    assert.is_nil(io.open(path)) -- the socket file is gone
    assert.matches("bad argument #1 to 'listen' %(path is too long for a socket%)",
                   errmsg(function() return casync.pipe.listen(("p"):rep(200), print) end))
    assert.matches("bad argument #1 to 'connect' %(path must not be empty%)",
                   errmsg(function() return casync.pipe.connect("") end))
    local c2, err2 = casync.pipe.connect(path)
    assert.is_nil(c2)
    assert.equal("ENOENT", err2.code)
    assert.equal("io", err2.kind)
  end))
end)

describe("stream writes", function()
  it("write takes a string or an array of strings, and returns true", nasync(function()
    local c, s, done = pair()
    assert.is_true(c:write("a"))
    assert.is_true(c:write{"b", "", "cd", "\n"})
    assert.is_true(c:write(""))
    assert.is_true(c:write{})
    assert.equal("abcd", s:read_line())
    done()
  end))

  it("transfers several MB intact both ways, with bounded buffers", nasync(function()
    local c, s, done = pair()
    local n, size = 128, 65536 -- 8 MB each way
    local sender = casync.spawn(function()
      for i = 1, n do assert(s:write(chunk(i, size))) end
      assert(s:shutdown())
    end)
    local echoer = casync.spawn(function() -- client -> server, as one write
      local parts = {}
      for i = 1, n do parts[i] = chunk(i, size) end
      assert(c:write(parts))
    end)
    local got, maxbuf, i = {}, 0, 0
    local expect = {}
    while true do
      local data = c:read()
      if not data then break end
      got[#got + 1] = data
      i = i + 1
      if i % 16 == 0 then casync.sleep(0.001) end -- a slow reader
      maxbuf = math.max(maxbuf, c:buffered())
    end
    for k = 1, n do expect[k] = chunk(k, size) end
    assert.equal(#table.concat(expect), #table.concat(got))
    assert.is_true(table.concat(expect) == table.concat(got), "data differ")
    -- read-ahead stops near 64 KiB when nobody reads
    assert.is_true(maxbuf <= 256 * 1024, "buffered " .. maxbuf .. " bytes")
    -- the other direction
    local total = 0
    for k = 1, n do
      local data = assert(s:read_exactly(size))
      assert.is_true(data == chunk(k, size), "chunk " .. k .. " differs")
      total = total + #data
    end
    assert.equal(n * size, total)
    sender:wait()
    echoer:wait()
    done()
  end, 30))

  it("write suspends while the peer does not read (backpressure)", nasync(function()
    local c, s, done = pair()
    local size, written, timed_out = 65536, 0, nil
    local data = ("x"):rep(size)
    for _ = 1, 1024 do -- up to 64 MB: far more than the kernel buffers
      local ok, err = c:write(data, 0.1)
      written = written + size
      if not ok then
        timed_out = err
        break
      end
    end
    assert.is_truthy(timed_out, "64 MB went out with nobody reading")
    assert.equal("timeout", timed_out.kind)
    assert.equal("ETIMEDOUT", timed_out.code)
    -- the write that timed out still completes once the peer reads, and
    -- shutdown waits for it
    local reader = casync.spawn(function()
      local n = 0
      while true do
        local d = s:read()
        if not d then return n end
        n = n + #d
      end
    end)
    assert(c:shutdown())
    assert.equal(written, reader:wait())
    done()
  end, 30))

  it("a write cancelled while it waits completes in the background", nasync(function()
    local c, s, done = pair()
    local big = ("y"):rep(16 * 1024 * 1024)
    local w = casync.spawn(function() return c:write(big) end)
    casync.sleep(0.05)
    if not w:done() then -- (unless the kernel buffers took 16 MB already)
      w:cancel()
      local ok, err = pcall(w.wait, w)
      assert.is_false(ok)
      assert.equal("cancelled", err.kind)
    end
    big = nil
    collectgarbage() -- the data is anchored until libuv is done with it
    -- the stream stays usable: later writes come after all of it
    local w2 = casync.spawn(function() return c:write("tail") end)
    local data = s:read_exactly(16 * 1024 * 1024 + 4)
    assert.is_true(data:sub(1, 16 * 1024 * 1024) == ("y"):rep(16 * 1024 * 1024))
    assert.equal("tail", data:sub(-4))
    assert.is_true(w2:wait())
    done()
  end, 30))

  it("shutdown half-closes: the peer reads to the end and can still answer", nasync(function()
    local c, s, done = pair()
    assert(c:write("request part 1, "))
    assert(c:write("part 2"))
    assert.is_true(c:shutdown())
    assert.is_true(c:shutdown()) -- again: harmless
    assert.equal("request part 1, part 2", helper.read_all(s))
    assert(s:write("answer"))
    s:close()
    assert.equal("answer", c:read())
    assert.is_nil(c:read())
    assert.matches("write: the stream was shut down for writing",
                   errmsg(c.write, c, "more"))
    done()
  end))
end)

describe("stream failures", function()
  it("a peer that resets mid-read gives nil, err (or the end)", nasync(function()
    local c, s, done = pair()
    assert(c:write(("z"):rep(100000))) -- unread data: closing sends a reset
    casync.sleep(0.01)
    s:close()
    local r, err = c:read()
    assert.is_nil(r)
    if err then
      assert.equal("io", err.kind)
      assert.is_truthy(err.code)
    end
    done()
  end))

  it("a peer that vanishes mid-write gives nil, err and no SIGPIPE", nasync(function()
    local c, s, done = pair()
    s:close()
    local data, err = ("w"):rep(65536), nil
    for _ = 1, 2000 do
      local ok, e = c:write(data, 2)
      if not ok then
        err = e
        break
      end
    end
    assert.is_truthy(err, "writes to a closed peer kept succeeding")
    assert.equal("io", err.kind)
    assert.is_truthy(err.code == "EPIPE" or err.code == "ECONNRESET", err.code)
    assert.matches("^write: ", err.message)
    done()
  end, 20))

  it("SIGPIPE does not kill a process that writes to a vanished peer", function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        local srv = casync.tcp.listen("127.0.0.1", 0, function(s) s:close() end)
        local c = casync.tcp.connect("127.0.0.1", srv:port())
        casync.sleep(0.02)
        local r, e
        for _ = 1, 1000 do
          r, e = c:write(("x"):rep(65536), 2)
          if not r then break end
        end
        print("alive", e and e.code)
        c:close()
        srv:close()
      end)
    ]])
    assert.equal(0, code, err)
    assert.matches("^alive\tE", out)
  end)
end)

describe("stream timeouts", function()
  it("a read times out with kind 'timeout', keeping what came", nasync(function()
    local c, s, done = pair()
    local dt, r, err = helper.elapsed(c.read, c, 10, 0.05)
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    assert.equal("ETIMEDOUT", err.code)
    assert.equal("read: timed out after 0.05 s", err.message)
    assert.is_true(dt >= 0.045 and dt < 1, "took " .. dt)
    assert(s:write("abc"))
    r, err = c:read_line(nil, 0.05)
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    assert(s:write("def\n"))
    assert.equal("abcdef", c:read_line(nil, 1))
    -- a zero timeout polls
    r, err = c:read_exactly(1, 0)
    assert.equal("timeout", err.kind)
    done()
  end))

  it("set_timeout sets the default of every waiting operation", nasync(function()
    local c, s, done = pair()
    c:set_timeout(0.03)
    local r, err = c:read()
    assert.equal("timeout", err.kind)
    r, err = c:read_until("\n")
    assert.equal("timeout", err.kind)
    assert(s:write("x\n"))
    assert.equal("x", c:read_line(nil, 1)) -- an explicit one wins
    c:set_timeout(nil)
    local t = casync.spawn(function() return c:read() end)
    casync.sleep(0.06)
    assert.is_false(t:done()) -- no timeout any more
    assert(s:write("late"))
    assert.equal("late", t:wait())
    done()
  end))
end)

describe("stream and tasks", function()
  it("cancelling a waiting reader leaves the stream usable", nasync(function()
    local c, s, done = pair()
    local t = casync.spawn(function() return c:read() end)
    casync.sleep(0.01)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.is_true(t:cancelled())
    assert(s:write("still here"))
    assert.equal("still here", c:read())
    done()
  end))

  it("a task waiting in read gets kind 'closed' when another closes it", nasync(function()
    local c, s, done = pair()
    local t = casync.spawn(function() return c:read() end)
    local big = ("q"):rep(32 * 1024 * 1024) -- more than the kernel takes
    local w = casync.spawn(function() return c:write(big) end)
    casync.sleep(0.01)
    c:close()
    c:close() -- again: nothing
    local r, err = t:wait()
    assert.is_nil(r)
    assert.equal("closed", err.kind)
    assert.matches("the stream was closed", tostring(err))
    assert.is_true(c:closed())
    local r2, err2 = w:wait()
    assert.is_nil(r2)
    assert.equal("closed", err2.kind)
    done()
  end))

  it("only one task may read (or write) at a time", nasync(function()
    local c, s, done = pair()
    local t = casync.spawn(function() return c:read() end)
    casync.sleep(0.01)
    assert.matches("read: another task is already reading from this stream",
                   errmsg(c.read, c))
    assert.matches("read_line: another task is already reading",
                   errmsg(c.read_line, c))
    assert(s:write("1"))
    assert.equal("1", t:wait())
    -- writers
    local big = ("q"):rep(32 * 1024 * 1024)
    local w = casync.spawn(function() return c:write(big) end)
    casync.sleep(0.02)
    if not w:done() then
      assert.matches("write: another task is already writing to this stream",
                     errmsg(c.write, c, "x"))
    end
    local n = 0
    while n < #big do n = n + #assert(s:read()) end
    assert.is_true(w:wait())
    done()
  end, 20))

  it("a stream in a <close> variable is closed at the end of the block", nasync(function()
    local c, s, done = pair()
    do
      local cc <close> = c
      assert.equal("casync.Stream (tcp, open)", tostring(cc))
    end
    assert.is_true(c:closed())
    assert.equal("casync.Stream (tcp, closed)", tostring(c))
    assert.is_nil(s:read())
    done()
  end))

  it("unreferenced streams are closed by the garbage collector", nasync(function()
    local srv = assert(casync.tcp.listen("127.0.0.1", 0, function(s) s:read() end))
    do
      local c = assert(casync.tcp.connect("127.0.0.1", srv:port()))
      c:write("x")
    end
    casync.sleep(0.01)
    collectgarbage()
    collectgarbage()
    casync.sleep(0.01)
    assert.equal(0, srv:connections()) -- the handler saw the end
    srv:close()
  end))
end)

describe("stream addresses", function()
  it("sockname and peername give host and port", nasync(function()
    local c, s, done = pair()
    local h1, p1 = c:sockname()
    local h2, p2 = s:peername()
    assert.equal("127.0.0.1", h1)
    assert.equal(h1, h2)
    assert.equal(p1, p2)
    local h3, p3 = c:peername()
    local h4, p4 = s:sockname()
    assert.equal(h3, h4)
    assert.equal(p3, p4)
    assert.is_true(p1 > 0 and p3 > 0)
    done()
  end))
end)

describe("stdio streams", function()
  local function run(code, shell)
    local setup = ("package.path = %q .. package.path; package.cpath = %q .. package.cpath; ")
      :format(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;",
              helper.build .. "/lib/?.so;")
    local cmd = "lua5.4 -e " .. helper.quote(setup .. code)
    if shell:match("^script") then cmd = helper.quote(cmd) end
    return helper.sh(shell:format(cmd))
  end

  it("stdin and stdout are streams when they are pipes", function()
    local code, out, err = run([[
      local casync = require "casync"
      casync.run(function()
        local i, o = casync.stdin(), casync.stdout()
        assert(casync.stdin() == i)
        local a, b, c = i:read_line(), i:read_line(), i:read_line()
        assert(o:write(("%s|%s|%s|%s\n"):format(i:kind(), a, b, tostring(c))))
        assert(casync.stream.stdio(1) == o)
        i:close()
        o:close()
      end)
      io.write("after\n") -- stdout is blocking again
    ]], "printf 'one\\r\\ntwo\\n' | %s | cat")
    assert.equal(0, code, err)
    assert.equal("pipe|one|two|nil\nafter\n", out)
  end)

  it("stdout is a stream when it is a terminal", function()
    if helper.sh("command -v script") ~= 0 then
      return pending("script(1) is not installed: no pseudo-terminal")
    end
    local code, out, err = run([[
      local casync = require "casync"
      casync.run(function()
        local o = assert(casync.stdout())
        assert(o:write("kind=" .. o:kind() .. "\n"))
        o:close()
      end)
      io.write("after\n")
    ]], "script -qec %s /dev/null < /dev/null")
    assert.equal(0, code, err)
    assert.matches("kind=tty\r?\nafter", out)
  end)

  it("stdio refuses a regular file", function()
    local code, out, err = run([[
      local casync = require "casync"
      local s, e = casync.stdin()
      print(s, e.kind, e.code)
    ]], "%s < /dev/null")
    -- /dev/null is a character device, not a pipe or TTY
    assert.equal(0, code, err)
    assert.matches("^nil\tio\tENOTSUP", out)
  end)
end)

describe("stream misuse", function()
  it("checks argument types and ranges, naming the function", nasync(function()
    local c, s, done = pair()
    local function e(f) return errmsg(f) end
    assert.matches("bad argument #1 to 'read' %(integer expected, got string%)",
                   e(function() return c:read("x") end))
    assert.matches("bad argument #1 to 'read' %(count must not be negative%)",
                   e(function() return c:read(-1) end))
    assert.matches("count must be a whole number", e(function() return c:read(1.5) end))
    assert.matches("bad argument #2 to 'read' %(number expected, got string%)",
                   e(function() return c:read(1, "soon") end))
    assert.matches("bad argument #2 to 'read' %(number expected, got NaN%)",
                   e(function() return c:read(nil, 0 / 0) end))
    assert.matches("bad argument #1 to 'read_exactly' %(number expected, got no value%)",
                   e(function() return c:read_exactly() end))
    assert.matches("bad argument #1 to 'read_until' %(string expected, got no value%)",
                   e(function() return c:read_until() end))
    assert.matches("bad argument #1 to 'read_until' %(delimiter must not be empty%)",
                   e(function() return c:read_until("") end))
    assert.matches("bad argument #1 to 'read_line' %(max_len must not be negative%)",
                   e(function() return c:read_line(-5) end))
    assert.matches("bad argument #1 to 'write' %(string or array of strings expected, got no value%)",
                   e(function() return c:write() end))
    assert.matches("bad argument #1 to 'write' %(item 2 is not a string%)",
                   e(function() return c:write{"a", 1} end))
    assert.matches("bad argument #1 to 'set_timeout' %(number expected, got string%)",
                   e(function() return c:set_timeout("x") end))
    assert.matches("bad argument #1 to 'unread' %(string expected, got no value%)",
                   e(function() return c:unread() end))
    assert.matches("bad argument #1 to 'set_nodelay' %(boolean expected",
                   e(function() return c:set_nodelay(1) end))
    assert.matches("calling 'read' on bad self %(casync.Stream expected, got table%)",
                   e(function() local o = {read = c.read}; return o:read() end))
    done()
  end))

  it("refuses a closed stream", nasync(function()
    local c, s, done = pair()
    c:close()
    for _, m in ipairs{"read", "read_line", "read_until", "read_exactly", "write",
                       "shutdown", "peek", "buffered", "unread", "sockname",
                       "peername", "set_timeout", "set_nodelay"} do
      assert.matches(m .. ": attempt to use a closed stream",
                     errmsg(function() return c[m](c, "x") end))
    end
    done()
  end))

  it("refuses to wait outside a task or in a plain coroutine", function()
    local c, s, done, srv
    casync.run(function()
      srv = assert(casync.tcp.listen("127.0.0.1", 0, function(x) x:read() end))
      c = assert(casync.tcp.connect("127.0.0.1", srv:port()))
      assert.matches("read: cannot suspend a coroutine that casync does not manage",
                     errmsg(coroutine.wrap(function() return c:read() end)))
    end)
    assert.matches("read: must be called inside a task", errmsg(c.read, c))
    assert.matches("write: must be called inside a task", errmsg(c.write, c, "x"))
    assert.matches("shutdown: must be called inside a task", errmsg(c.shutdown, c))
    assert.equal("", c:peek()) -- not a waiting operation
    c:close()
    srv:close()
    casync.run(function() casync.sleep(0.002) end)
  end)
end)
