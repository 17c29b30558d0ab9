-- Issue 11 "The network a real program needs", example E011.2: a TLS echo
-- server with a private CA this script makes with the openssl command, and
-- a client that verifies it as a browser would.
--
-- casync.tls.listen runs the handler once the handshake is done; the
-- streams are casync streams (read_line, write, ...) with TLS inside.
-- casync.tls.connect checks the server's certificate against opts.ca (by
-- default the system's CAs) and the host name; a client that does not
-- trust the CA gets an error of kind "tls" saying why.
local casync = require "casync"

local dir = os.tmpname()
os.remove(dir)
local function sh(cmd)
  local r = assert(casync.process.run({"sh", "-c", cmd}, {timeout = 30}))
  assert(r.code == 0, r.stderr)
end

local function main()
  -- the private CA, and a certificate for localhost it signs
  sh(([[mkdir -p %s && cd %s &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout ca.key -out ca.pem -days 1 -subj "/CN=Example private CA" \
      -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign 2>/dev/null &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -days 1 -extfile ext.cnf -out server.pem 2>/dev/null]]):format(dir, dir))
  print("made a private CA and a certificate for localhost")

  local server = assert(casync.tls.listen("127.0.0.1", 0, function(s)
    while true do
      local line = s:read_line()
      if not line then return end
      s:write("echo: " .. line .. "\n")
    end
  end, {cert = dir .. "/server.pem", key = dir .. "/server.key"}))

  local c <close> = assert(casync.tls.connect("localhost", server:port(),
                                              {ca = dir .. "/ca.pem"}))
  local info = c:tls_info()
  print(("connected: %s, certificate of %s verified: %s"):format(
    info.version, info.peer_subject, info.verified))
  for _, line in ipairs({"hello over TLS", "second line"}) do
    c:write(line .. "\n")
    print(c:read_line())
  end
  c:close()

  -- a client that does not know the private CA (the system's CAs only)
  local refused, err = casync.tls.connect("localhost", server:port())
  print(("without the CA: %s, %s"):format(refused, err))

  server:close()
  sh("rm -rf " .. dir)
end

casync.run(main)
