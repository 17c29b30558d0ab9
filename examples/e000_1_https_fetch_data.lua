-- Seed 000 "Async vs. Concurrency: Explained", example E000.1 over HTTPS:
-- fetch_data for user1/2/3 (2 s, 1 s, 3 s) run concurrently with gather,
-- each fetch an HTTPS GET to a local server this script starts, with a
-- private CA and a certificate for 127.0.0.1 and localhost that the script
-- makes with the openssl command (e000_1_http_fetch_data.lua is the same
-- over plain HTTP).
--
-- The client trusts only that CA ({tls = {ca = ...}}): the same fetch with
-- the system's CAs fails with an error of kind "tls", as a browser would
-- refuse a certificate it cannot verify.
local casync = require "casync"
local http = casync.http

local DELAYS = {user1 = 2, user2 = 1, user3 = 3}

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

local function main()
  local pem = make_certificates()
  print("made a private CA and a certificate for 127.0.0.1 and localhost")
  local TLS = {tls = {ca = pem["ca.pem"]}} -- trust this CA, and only it

  -- the "remote" API: GET /data/<name> answers "<name> data" after its delay
  local server = assert(http.serve("127.0.0.1", 0, function(req)
    local name = req.path:match("^/data/(%w+)$")
    if not DELAYS[name] then return {status = 404, body = "unknown user"} end
    casync.sleep(DELAYS[name])
    return name .. " data"
  end, {tls = {cert = pem["server.pem"], key = pem["server.key"]}}))

  local function fetch_data(name)
    print(("Fetching data for %s..."):format(name))
    local response = assert(http.get(server:url("/data/" .. name), TLS))
    print(("Data for %s received!"):format(name))
    return response.body
  end

  local t0 = casync.now()
  local results = casync.gather({
    function() return fetch_data("user1") end,
    function() return fetch_data("user2") end,
    function() return fetch_data("user3") end,
  })
  local quoted = {}
  for i = 1, results.n do quoted[i] = ("'%s'"):format(results[i]) end
  print(("All results: [%s]"):format(table.concat(quoted, ", ")))
  print(("Total: %.2fs (the longest delay is 3 s, the sum 6 s) over %s"):format(
    casync.now() - t0, server:url()))

  -- A client that knows only the system's CAs.  (The kept-alive
  -- connections are closed first, so this one makes its own handshake.)
  http.close_idle()
  local r, err = http.get(server:url("/data/user2"))
  print(("without the private CA: %s, kind %q, code %s: %s"):format(
    r, err.kind, err.code, err.message))
  server:close()
end

casync.run(main) -- asyncio.run(main())
