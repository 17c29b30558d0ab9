-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "Async in Different Languages", example E004.11 over HTTPS:
-- aiohttp's ClientSession fetching /api/users, /api/posts and /api/comments
-- concurrently, as in e004_11_aiohttp_session.lua, but from a local HTTPS
-- server with a private CA and a certificate for 127.0.0.1 and localhost
-- that this script makes with the openssl command.
--
--   async with aiohttp.ClientSession() as session:   -- local session <close>
--       async with session.get(url, ssl=ctx) as r:    -- session:get(url, TLS)
--
-- casync.http.session takes no TLS settings of its own, so each request
-- passes them, as aiohttp's session.get(url, ssl=ctx) may.  The session
-- keeps its TLS connections alive: the fourth request reuses one (4
-- requests on 3 connections, 3 handshakes).  A session that trusts only the
-- system's CAs is refused with an error of kind "tls".
local casync = require "casync"
local http = casync.http

local DATA = {
  ["/api/users"] = {delay = 0.15, json = {{id = 1, name = "Ada"}, {id = 2, name = "Grace"}}},
  ["/api/posts"] = {delay = 0.10, json = {{id = 10, title = "Hello"}, {id = 11, title = "Async"},
                                          {id = 12, title = "Lua"}}},
  ["/api/comments"] = {delay = 0.20, json = {{id = 100, text = "Nice"}}},
}

-- Makes a private CA and a server certificate it signs, in a temporary
-- directory removed before returning: the PEM texts (casync takes PEM text
-- as well as file names).
local function make_certificates()
  local function run(argv, opts)
    local r = assert(casync.process.run(argv, opts))
    assert(r.code == 0, r.stderr)
    return r.stdout
  end
  local dir = run({"mktemp", "-d"}):match("[^\n]+")
  local rm <close> = setmetatable({}, {__close = function()
    run({"rm", "-rf", dir})
  end})
  local EC = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"}
  local function openssl(...) run({"openssl", ...}, {cwd = dir, timeout = 30}) end
  openssl("req", "-x509", "-days", "1", "-subj", "/CN=casync example CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign",
          "-keyout", "ca.key", "-out", "ca.pem", table.unpack(EC))
  openssl("req", "-subj", "/CN=localhost",
          "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
          "-keyout", "server.key", "-out", "server.csr", table.unpack(EC))
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
          "-CAcreateserial", "-days", "1", "-copy_extensions", "copy", "-out", "server.pem")
  local pem = {}
  for _, name in ipairs({"ca.pem", "server.pem", "server.key"}) do
    pem[name] = assert(casync.fs.read_file(dir .. "/" .. name))
  end
  return pem
end

local TLS -- {tls = {ca = the private CA}}: the options of every request

-- async def fetch_data(session, url):
--     async with session.get(url, ssl=ctx) as response:
--         return await response.json()
local function fetch_data(session, url)
  local response = assert(session:get(url, TLS))
  assert(response.ok, response.status)
  return assert(response:json())
end

local function fetch_multiple_endpoints(base_url)
  local session <close> = http.session{base_url = base_url,
                                       headers = {["User-Agent"] = "casync-example"}}
  local results = casync.gather({
    function() return fetch_data(session, "/api/users") end,
    function() return fetch_data(session, "/api/posts") end,
    function() return fetch_data(session, "/api/comments") end,
  })
  -- the session is still open here: a second round reuses its connections
  local again = fetch_data(session, "/api/users")
  return results, again
end

local function main()
  local pem = make_certificates()
  print("made a private CA and a certificate for 127.0.0.1 and localhost")
  TLS = {tls = {ca = pem["ca.pem"]}}
  local server = assert(http.serve("127.0.0.1", 0, function(req)
    local d = DATA[req.path]
    if not d then return {status = 404, json = {error = "not found"}} end
    casync.sleep(d.delay) -- the database behind the API
    return {json = d.json}
  end, {tls = {cert = pem["server.pem"], key = pem["server.key"]}}))

  local t0 = casync.now()
  local results, again = fetch_multiple_endpoints(server:url())
  local took = casync.now() - t0
  print(("users: %d (%s, %s)"):format(#results[1], results[1][1].name, results[1][2].name))
  print(("posts: %d (%s)"):format(#results[2], results[2][3].title))
  print(("comments: %d (%s)"):format(#results[3], results[3][1].text))
  print(("users again: %s, %s"):format(again[1].name, again[2].name))
  print(("all three concurrently, then one more: %.0fms (sequential would be 450 + 150 ms)")
    :format(took * 1000))
  local st = server:stats()
  print(("server: %d requests on %d connections, over %s"):format(
    st.requests, st.accepted, server:url()))

  -- a session without the private CA: the system's CAs only
  local plain <close> = http.session{base_url = server:url()}
  local r, err = plain:get("/api/users")
  print(("without the private CA: %s, kind %q, code %s: %s"):format(
    r, err.kind, err.code, err.message))
  server:close()
end

casync.run(main)
