-- tls.c, tls_conf.c, tls_lua.c: casync.tls.connect, listen and wrap, with
-- certificates made at run time (spec/certs.sh: a private CA, an expired
-- certificate, one for another host, a self-signed one, a client's), checked
-- against casync itself and against real peers both ways: curl, openssl
-- s_client and s_server, Python's ssl and Node's https.
local casync = require "casync"

-- The message of the error fn raises, without the position.
local function errmsg(fn)
  return (tostring(helper.errmsg(fn)):gsub("^[^:]*:%d+: ", ""))
end

local D = os.tmpname()
os.remove(D)
assert(helper.sh("spec/certs.sh " .. D) == 0, "spec/certs.sh failed")
D = D .. "/"
local CA = D .. "ca.pem"
local SERVER = {cert = D .. "server.pem", key = D .. "server.key"}

local function have(cmd) return helper.sh("command -v " .. cmd) == 0 end
local HAVE_NODE, HAVE_CURL = have("node"), have("curl")

local function read_file(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function with(t, extra)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- An echo handler: each line back with "echo: " in front.
local function echo(s)
  while true do
    local line = s:read_line()
    if not line then return end
    if not s:write("echo: " .. line .. "\n") then return end
  end
end

-- Echoes one line and closes (openssl s_client -quiet waits for that).
local function echo_once(s)
  local line = s:read_line()
  if line then s:write("echo: " .. line .. "\n") end
end

-- Answers one HTTP/1.1 request (the request line in the body) and closes.
local function http_once(s)
  local line = s:read_line()
  repeat local h = s:read_line() until h == "" or h == nil
  local body = "casync tls: " .. (line or "?")
  s:write(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s")
    :format(#body, body))
  s:shutdown()
end

-- Starts a peer that prints its port first: the process and the port.
local function peer(argv)
  local p = assert(casync.process.spawn(argv, {stdout = "pipe", stderr = "ignore",
    env = {LD_PRELOAD = false}})) -- peers run without the sanitizers
  local line = p.stdout:read_line(nil, 10)
  assert(line, "the peer printed no port: " .. table.concat(argv, " "))
  return p, tonumber(line)
end

local function stop(p)
  p:kill("SIGTERM")
  p:wait()
  p.stdout:close()
end

-- A port nobody listens on now.
local function free_port()
  local s = assert(casync.tcp.listen("127.0.0.1", 0, function() end))
  local port = s:port()
  s:close()
  return port
end

-- run(cmd) -> code, stdout, stderr of a shell command, in a task.
local function run(cmd, input)
  local r = assert(casync.process.run({"sh", "-c", cmd},
    {timeout = 20, input = input, env = {LD_PRELOAD = false}}))
  return r.code, r.stdout, r.stderr
end

-- Like async, and afterwards no stream is left open.
local function tasync(fn, timeout)
  return async(function()
    fn()
    casync.sleep(0.005)
    local st = casync.stream._stats()
    assert(st.open == 0, "streams left open: " .. st.open)
  end, timeout or 20)
end

describe("tls between casync peers", function()
  it("connects, verifies and echoes; both sides see what was agreed", tasync(function()
    local seen
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, function(s)
      seen = s:tls_info()
      echo(s)
    end, with(SERVER, {alpn = {"http/1.1"}})))
    local c <close> = assert(casync.tls.connect("localhost", srv:port(), {ca = CA}))
    assert.equal("tcp", c:kind())
    assert(c:write("hello\n"))
    assert.equal("echo: hello", c:read_line())
    local info = c:tls_info()
    assert.equal("TLSv1.3", info.version)
    assert.equal("http/1.1", info.alpn)
    assert.is_true(info.verified)
    assert.equal("/CN=localhost", info.peer_subject)
    assert.truthy(info.cipher)
    assert.equal("localhost", seen.server_name)  -- SNI
    assert.equal("http/1.1", seen.alpn)
    assert.is_nil(casync.tcp and nil)
  end))

  it("verifies a numeric address against the certificate's IP names", tasync(function()
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, echo, SERVER))
    local c <close> = assert(casync.tls.connect("127.0.0.1", srv:port(), {ca = CA}))
    assert(c:write("ip\n"))
    assert.equal("echo: ip", c:read_line())
    assert.is_nil(c:tls_info().server_name) -- no SNI for an address
  end))

  it("moves a megabyte each way at once, reads of every kind on top", tasync(function()
    local block = string.rep("0123456789abcdef", 65536) -- 1 MiB
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, function(s)
      local got = assert(s:read_exactly(#block))
      assert(s:write({got:sub(1, 10), got:sub(11)}))
      assert.equal("end", s:read_line())
      s:write("bye\r\nrest")
      s:shutdown()
      assert.is_nil(s:read())
    end, SERVER))
    local c <close> = assert(casync.tls.connect("localhost", srv:port(), {ca = CA}))
    local w = casync.spawn(function() return c:write(block) end)
    assert.equal(block, c:read_exactly(#block))
    assert.is_true(w:wait())
    assert(c:write("end\n"))
    assert.equal("bye", c:read_line())
    assert.equal("re", c:read(2))
    assert.equal("st", c:peek())
    assert.equal("st", c:read_until("\0", 10) or c:read())
    assert.is_nil(c:read()) -- close_notify: the end of the stream
    c:shutdown()
  end))

  it("sends close_notify on shutdown and on close", tasync(function()
    local ends = casync.channel(2)
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, function(s)
      local data, err = s:read()
      ends:send({data, err})
    end, SERVER))
    local c1 = assert(casync.tls.connect("localhost", srv:port(), {ca = CA}))
    assert(c1:shutdown())
    local e = ends:recv()
    assert.is_nil(e[1])
    assert.is_nil(e[2])
    c1:close()
    local c2 = assert(casync.tls.connect("localhost", srv:port(), {ca = CA}))
    c2:close()
    e = ends:recv()
    assert.is_nil(e[1])
    assert.is_nil(e[2])
  end))

  it("says why a certificate is refused: unknown CA, expired, wrong host", tasync(function()
    local cases = {
      {"server", {}, "UNKNOWN_CA", "connect: certificate verify failed: unknown CA"},
      {"selfsigned", {ca = CA}, "UNKNOWN_CA", "unknown CA (self-signed certificate)"},
      {"expired", {ca = CA}, "CERT_EXPIRED", "the certificate has expired"},
      {"wronghost", {ca = CA}, "HOSTNAME_MISMATCH",
       "wrong host name (the certificate is not for 'localhost')"},
      {"server", {ca = D .. "other-ca.pem"}, "UNKNOWN_CA", "unknown CA"},
    }
    for _, case in ipairs(cases) do
      local name, opts, code, msg = table.unpack(case)
      local refused = casync.channel(1)
      local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, echo,
        {cert = D .. name .. ".pem", key = D .. name .. ".key",
         on_error = function(err) refused:send(err) end}))
      local c, err = casync.tls.connect("localhost", srv:port(), opts)
      assert.is_nil(c, name)
      assert.equal("tls", err.kind)
      assert.equal(code, err.code, name)
      assert.truthy(err.message:find(msg, 1, true), err.message)
      assert.truthy(tostring(err):find("^tls: connect: certificate verify failed"))
      -- the server hears of it as an alert from the client
      local serr = refused:recv()
      assert.equal("tls", serr.kind)
      assert.equal("ALERT", serr.code)
      -- verify = false, and only that, lets it through
      local c2 <close> = assert(casync.tls.connect("localhost", srv:port(), {verify = false}))
      assert(c2:write("anyway\n"))
      assert.equal("echo: anyway", c2:read_line())
      assert.is_false(c2:tls_info().verified)
    end
  end))

  it("a server name of our own overrides the host for SNI and the check", tasync(function()
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, echo,
      {cert = D .. "wronghost.pem", key = D .. "wronghost.key"}))
    local c <close> = assert(casync.tls.connect("127.0.0.1", srv:port(),
      {ca = CA, server_name = "other.example"}))
    assert(c:write("x\n"))
    assert.equal("echo: x", c:read_line())
    local c2, err = casync.tls.connect("127.0.0.1", srv:port(), {ca = CA})
    assert.is_nil(c2)
    assert.equal("HOSTNAME_MISMATCH", err.code)
  end))

  it("uses the system's CA store by default (SSL_CERT_FILE points it)", function()
    local srv_code = ([[
      local casync = require "casync"
      casync.run(function()
        local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, function(s)
          s:write("trusted\n") end, {cert = %q, key = %q}))
        local c <close> = assert(casync.tls.connect("localhost", srv:port()))
        io.write(c:read_line())
      end)]]):format(SERVER.cert, SERVER.key)
    local code, out, err = helper.sh("SSL_CERT_FILE=" .. CA .. " lua5.4 -e " ..
      helper.quote(("package.path = %q .. package.path; package.cpath = %q .. package.cpath; ")
        :format(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;",
                helper.build .. "/lib/?.so;") .. srv_code))
    assert.equal(0, code, err)
    assert.equal("trusted", out)
  end)

  -- Debian's /etc/ssl/certs has hash links (update-ca-certificates): a
  -- client reads the one CA certificate a handshake needs from there
  -- instead of parsing the whole bundle file for every new context.
  -- SSL_CERT_DIR here holds only the private CA, by its hash link; the
  -- same server is unknown when the directory has no hash link.
  it("reads the system's CA store through its hashed directory (SSL_CERT_DIR points it)", function()
    local function mkdir()
      local d = os.tmpname()
      os.remove(d)
      assert(os.execute("mkdir '" .. d .. "'"))
      return d
    end
    local dir, plain = mkdir(), mkdir()
    local code, h = helper.sh("openssl x509 -noout -subject_hash -in " .. CA)
    assert.equal(0, code)
    h = h:match("%x+")
    assert.equal(0, (helper.sh(("cp %s %s/casync-ca.pem && cp %s %s/casync-ca.pem && ln -s casync-ca.pem %s/%s.0")
      :format(CA, dir, CA, plain, dir, h))))
    local srv_code = ([[
      local casync = require "casync"
      casync.run(function()
        local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, function(s)
          s:write("trusted\n") end, {cert = %q, key = %q}))
        local c, err = casync.tls.connect("localhost", srv:port())
        io.write(c and c:read_line() or err.code)
      end)]]):format(SERVER.cert, SERVER.key)
    local function run(cert_dir)
      return helper.sh("env -u SSL_CERT_FILE SSL_CERT_DIR=" .. cert_dir .. " lua5.4 -e " ..
        helper.quote(("package.path = %q .. package.path; package.cpath = %q .. package.cpath; ")
          :format(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;",
                  helper.build .. "/lib/?.so;") .. srv_code))
    end
    local c1, out1, err1 = run(dir)
    assert.equal(0, c1, err1)
    assert.equal("trusted", out1)
    -- no hash links: OpenSSL's default paths (the system bundle, which does
    -- not hold the private CA)
    local c2, out2, err2 = run(plain)
    assert.equal(0, c2, err2)
    assert.equal("UNKNOWN_CA", out2)
    os.execute("rm -rf '" .. dir .. "' '" .. plain .. "'")
  end)

  it("client certificates: required by a server with opts.ca", tasync(function()
    local subject = casync.channel(4)
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, function(s)
      subject:send(s:tls_info().peer_subject)
      echo(s)
    end, with(SERVER, {ca = CA, on_error = function(err) subject:send(err.code) end})))
    local c <close> = assert(casync.tls.connect("localhost", srv:port(),
      {ca = CA, cert = D .. "client.pem", key = D .. "client.key"}))
    assert(c:write("me\n"))
    assert.equal("echo: me", c:read_line())
    assert.equal("/CN=casync client", subject:recv())
    -- without one: refused (in TLS 1.3 the client learns it on its first read)
    local c2, err = casync.tls.connect("localhost", srv:port(), {ca = CA})
    if c2 then
      local data
      data, err = c2:read()
      assert.is_nil(data)
      c2:close()
    end
    assert.equal("tls", err.kind)
    assert.equal("NO_CERTIFICATE", subject:recv())
  end))

  it("TLS 1.2 and version bounds", tasync(function()
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, echo,
      with(SERVER, {max_version = "tls1.2"})))
    local c <close> = assert(casync.tls.connect("localhost", srv:port(), {ca = CA}))
    assert.equal("TLSv1.2", c:tls_info().version)
    assert(c:write("old\n"))
    assert.equal("echo: old", c:read_line())
    local c2, err = casync.tls.connect("localhost", srv:port(),
      {ca = CA, min_version = "tls1.3"})
    assert.is_nil(c2)
    assert.equal("tls", err.kind)
    assert.truthy(err.message:find("protocol version", 1, true), err.message)
  end))

  it("STARTTLS: wrap turns a plain stream into TLS, both sides", tasync(function()
    local srv <close> = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
      s:write("220 ready\r\n")
      assert.equal("STARTTLS", s:read_line())
      s:write("220 go ahead\r\n")
      local same = assert(casync.tls.wrap(s, with(SERVER, {server = true})))
      assert.equal(s, same)
      echo(s)
    end))
    local c <close> = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert.equal("220 ready", c:read_line())
    c:write("STARTTLS\r\n")
    assert.equal("220 go ahead", c:read_line())
    assert.is_nil(c:tls_info())
    assert(casync.tls.wrap(c, {ca = CA, server_name = "localhost"}))
    assert.equal("TLSv1.3", c:tls_info().version)
    assert(c:write("secret\n"))
    assert.equal("echo: secret", c:read_line())
  end))
end)

describe("tls failures are waits that end", function()
  it("a server that never answers the hello: the connect times out", tasync(function()
    local srv <close> = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
      casync.sleep(5)
    end))
    local t0 = casync.now()
    local c, err = casync.tls.connect("127.0.0.1", srv:port(), {ca = CA, timeout = 0.2})
    assert.is_nil(c)
    assert.equal("timeout", err.kind)
    assert.equal("connect: timed out after 0.2 s", err.message)
    assert.is_true(casync.now() - t0 < 2)
    srv:close({cancel = true})
  end))

  it("a client that never says hello: the server gives up after handshake_timeout", tasync(function()
    local called, refused = false, casync.channel(1)
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, function() called = true end,
      with(SERVER, {handshake_timeout = 0.1, on_error = function(e) refused:send(e) end})))
    local c <close> = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    local err = refused:recv()
    assert.equal("timeout", err.kind)
    assert.is_nil(c:read()) -- the server closed it
    assert.is_false(called)
  end))

  it("cancelling a task in the handshake closes its stream", tasync(function()
    local srv <close> = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
      casync.sleep(5)
    end))
    local t = casync.spawn(casync.tls.connect, "127.0.0.1", srv:port(), {ca = CA})
    casync.sleep(0.05)
    assert.is_false(t:done())
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    srv:close({cancel = true})
  end))

  it("a peer that does not speak TLS, or hangs up, is an error of kind tls", tasync(function()
    local srv <close> = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
      s:read(5)
      s:write("HTTP/1.1 400 Bad Request\r\n\r\n")
    end))
    local c, err = casync.tls.connect("127.0.0.1", srv:port(), {ca = CA})
    assert.is_nil(c)
    assert.equal("tls", err.kind)
    assert.equal("PROTOCOL", err.code)
    local srv2 <close> = assert(casync.tcp.listen("127.0.0.1", 0, function(s) s:read(5) end))
    c, err = casync.tls.connect("127.0.0.1", srv2:port(), {ca = CA})
    assert.is_nil(c)
    assert.equal("tls", err.kind)
    assert.equal("EOF", err.code)
    assert.equal("connect: the peer closed the connection during the handshake", err.message)
  end))

  it("reads and writes on a TLS stream keep their timeouts", tasync(function()
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, function(s)
      casync.sleep(5)
    end, SERVER))
    local c <close> = assert(casync.tls.connect("localhost", srv:port(), {ca = CA}))
    local data, err = c:read(10, 0.05)
    assert.is_nil(data)
    assert.equal("timeout", err.kind)
    -- the server reads nothing: writes fill the buffers, then time out
    local block = string.rep("x", 1 << 20)
    local n = 0
    repeat
      local ok
      ok, err = c:write(block, 0.2)
      n = n + 1
    until not ok or n > 200
    assert.equal("timeout", err.kind)
    srv:close({cancel = true})
  end))
end)

describe("tls arguments", function()
  it("are checked the way Lua's own are", tasync(function()
    assert.equal("bad argument #3 to 'connect' (opts.ca must be a string)",
      errmsg(function() return casync.tls.connect("localhost", 1, {ca = 1}) end))
    assert.equal("bad argument #3 to 'connect' (opts.verify must be a boolean)",
      errmsg(function() return casync.tls.connect("localhost", 1, {verify = "no"}) end))
    assert.equal("bad argument #3 to 'connect' (opts.min_version must be \"tls1.2\" or \"tls1.3\")",
      errmsg(function() return casync.tls.connect("localhost", 1, {min_version = "tls1.0"}) end))
    assert.equal("bad argument #3 to 'connect' (opts.cert and opts.key go together)",
      errmsg(function() return casync.tls.connect("localhost", 1, {cert = SERVER.cert}) end))
    assert.equal("bad argument #2 to 'connect' (number expected, got no value)",
      errmsg(function() return casync.tls.connect("localhost") end))
    assert.equal("bad argument #4 to 'listen' (opts.cert and opts.key are needed to serve TLS)",
      errmsg(function() return casync.tls.listen("127.0.0.1", 0, echo, {}) end))
    assert.equal("bad argument #4 to 'listen' (table expected, got no value)",
      errmsg(function() return casync.tls.listen("127.0.0.1", 0, echo) end))
    local s <close> = assert(casync.tcp.listen("127.0.0.1", 0, echo))
    local c <close> = assert(casync.tcp.connect("127.0.0.1", s:port()))
    assert.equal("bad argument #2 to 'wrap' (opts.server_name is needed to verify the server (or opts.verify = false))",
      errmsg(function() return casync.tls.wrap(c, {}) end))
    assert.equal("bad argument #1 to 'wrap' (casync.Stream expected, got table)",
      errmsg(function() return casync.tls.wrap({}, {}) end))
  end))

  it("files that cannot be used are errors of kind tls, code CONFIG", tasync(function()
    local srv, err = casync.tls.listen("127.0.0.1", 0, echo, {cert = D .. "nope.pem", key = SERVER.key})
    assert.is_nil(srv)
    assert.equal("tls", err.kind)
    assert.equal("CONFIG", err.code)
    assert.equal("listen: cannot read the certificate '" .. D .. "nope.pem': No such file or directory",
      err.message)
    srv, err = casync.tls.listen("127.0.0.1", 0, echo, {cert = SERVER.cert, key = D .. "client.key"})
    assert.is_nil(srv)
    assert.truthy(err.message:find("the key does not match the certificate", 1, true))
    local c
    c, err = casync.tls.connect("localhost", 1, {ca = D .. "ca.cnf"})
    assert.is_nil(c)
    assert.equal("CONFIG", err.code)
  end))

  it("takes PEM text as well as file names", tasync(function()
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, echo,
      {cert = read_file(D .. "chain.pem"), key = read_file(SERVER.key)}))
    local c <close> = assert(casync.tls.connect("localhost", srv:port(), {ca = read_file(CA)}))
    assert(c:write("pem\n"))
    assert.equal("echo: pem", c:read_line())
  end))

  it("connect and wrap need a task; a numeric listen does not", function()
    assert.truthy(errmsg(function() return casync.tls.connect("localhost", 1) end):find("must be called inside a task"))
    local srv = assert(casync.tls.listen("127.0.0.1", 0, echo, SERVER))
    srv:close()
    assert.truthy(errmsg(function() return casync.tls.listen("localhost", 0, echo, SERVER) end)
      :find("listen: a host name is resolved without blocking the loop", 1, true))
  end)
end)

describe("tls against real peers", function()
  it("curl -> casync server (and curl refuses an expired one)", tasync(function()
    if not HAVE_CURL then return pending("no curl") end
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, http_once,
      with(SERVER, {alpn = {"http/1.1"}})))
    local url = ("https://localhost:%d/hello"):format(srv:port())
    local code, out = run("curl -sS --cacert " .. CA .. " " .. url)
    assert.equal(0, code)
    assert.equal("casync tls: GET /hello HTTP/1.1", out)
    local exp <close> = assert(casync.tls.listen("127.0.0.1", 0, http_once,
      {cert = D .. "expired.pem", key = D .. "expired.key"}))
    local err
    code, out, err = run(("curl -sS --cacert %s https://localhost:%d/"):format(CA, exp:port()))
    assert.equal(60, code) -- CURLE_PEER_FAILED_VERIFICATION
    assert.truthy(err:find("expired", 1, true), err)
  end))

  it("openssl s_client -> casync server, and STARTTLS as smtp", tasync(function()
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, echo_once, SERVER))
    local code, out = run(("openssl s_client -quiet -verify_return_error -CAfile %s " ..
      "-servername localhost -verify_hostname localhost -connect 127.0.0.1:%d")
      :format(CA, srv:port()), "from s_client\n")
    assert.equal(0, code)
    assert.equal("echo: from s_client\n", out)
    -- a tiny SMTP server: s_client does the STARTTLS dance, casync wraps
    local smtp <close> = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
      s:write("220 casync ESMTP\r\n")
      s:read_line()                               -- EHLO
      s:write("250-casync\r\n250 STARTTLS\r\n")
      assert.equal("STARTTLS", s:read_line())
      s:write("220 go ahead\r\n")
      assert(casync.tls.wrap(s, with(SERVER, {server = true})))
      echo_once(s)
    end))
    code, out = run(("openssl s_client -quiet -starttls smtp -verify_return_error " ..
      "-CAfile %s -connect 127.0.0.1:%d"):format(CA, smtp:port()), "after starttls\n")
    assert.equal(0, code)
    assert.equal("echo: after starttls\n", out)
  end))

  it("casync client -> openssl s_server (TLS 1.3 and 1.2)", tasync(function()
    for _, v in ipairs{"-tls1_3", "-tls1_2"} do
      local port = free_port()
      local p = assert(casync.process.spawn({"openssl", "s_server", v, "-rev", "-naccept", "1",
        "-accept", tostring(port), "-cert", SERVER.cert, "-key", SERVER.key},
        {stdout = "pipe", stderr = "ignore", env = {LD_PRELOAD = false}}))
      repeat local l = p.stdout:read_line(nil, 10) until l == nil or l:find("ACCEPT")
      local c <close> = assert(casync.tls.connect("localhost", port, {ca = CA}))
      assert.equal(v == "-tls1_3" and "TLSv1.3" or "TLSv1.2", c:tls_info().version)
      assert(c:write("stressed\n"))
      assert.equal("desserts", c:read_line())
      c:close()
      stop(p)
    end
  end))

  it("Python ssl both ways", tasync(function()
    local p, port = peer({"python3", "spec/peers/tls_python.py", "server", SERVER.cert, SERVER.key})
    local c <close> = assert(casync.tls.connect("localhost", port, {ca = CA}))
    assert(c:write("hi python\n"))
    assert.equal("py: hi python", c:read_line())
    assert.equal("http/1.1", c:tls_info().alpn)
    c:close()
    stop(p)
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, echo,
      with(SERVER, {alpn = {"h2", "http/1.1"}})))
    local code, out = run(("python3 spec/peers/tls_python.py client localhost %d %s")
      :format(srv:port(), CA))
    assert.equal(0, code)
    assert.equal("echo: hello from python\nTLSv1.3\nhttp/1.1\n", out)
    local bad <close> = assert(casync.tls.listen("127.0.0.1", 0, echo,
      {cert = D .. "wronghost.pem", key = D .. "wronghost.key"}))
    code, out = run(("python3 spec/peers/tls_python.py client localhost %d %s")
      :format(bad:port(), CA))
    assert.equal(1, code)
    assert.truthy(out:find("refused: Hostname mismatch", 1, true), out)
  end))

  it("Node https both ways", tasync(function()
    if not HAVE_NODE then return pending("no node") end
    local p, port = peer({"node", "spec/peers/tls_node.js", "server", SERVER.cert, SERVER.key})
    local c <close> = assert(casync.tls.connect("localhost", port, {ca = CA}))
    c:write(("GET /from-casync HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n")
      :format(port))
    assert.equal("HTTP/1.1 200 OK", c:read_line())
    local all = {}
    repeat local chunk = c:read() all[#all + 1] = chunk until not chunk
    assert.truthy(table.concat(all):find("node https: GET /from-casync", 1, true))
    c:close()
    stop(p)
    local srv <close> = assert(casync.tls.listen("127.0.0.1", 0, http_once,
      with(SERVER, {alpn = {"http/1.1"}})))
    local code, out = run(("node spec/peers/tls_node.js client https://localhost:%d/from-node %s")
      :format(srv:port(), CA))
    assert.equal(0, code)
    assert.equal("200\ncasync tls: GET /from-node HTTP/1.1\n", out)
    local exp <close> = assert(casync.tls.listen("127.0.0.1", 0, http_once,
      {cert = D .. "expired.pem", key = D .. "expired.key"}))
    code, out = run(("node spec/peers/tls_node.js client https://localhost:%d/ %s")
      :format(exp:port(), CA))
    assert.equal(1, code)
    assert.equal("error: CERT_HAS_EXPIRED\n", out)
  end))
end)
