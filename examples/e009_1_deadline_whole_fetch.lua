-- Issue 9 (scopes and deadlines), example E009.1: one deadline covers a
-- whole fetch (connect, request, response head, body) without a timeout
-- argument to any call.  The script starts a local HTTP server whose
-- answers are slow in different places, and a TCP server that never says
-- anything; each fetch runs in a block
--
--     local d <close> = casync.timeout(0.5)
--
-- and no http call gets a timeout option.  Wherever the fetch waits when
-- the 0.5 s are up (the TLS handshake, writing the request, waiting for
-- the head, reading the body), that wait raises, the client closes its
-- connection, and the block ends with the deadline's own error, kind
-- "timeout": http.get never returns.  A fast fetch inside the same kind
-- of block is not disturbed, and casync.move_on_after / fail_after are the
-- same deadline as a call.
local casync = require "casync"
local http = casync.http

local DEADLINE = 0.5

local function main()
  local lines_sent = 0
  local server = assert(http.serve("127.0.0.1", 0, function(req)
    if req.path == "/slow" then casync.sleep(10) return "late" end -- the head waits
    if req.path == "/drip" then -- the head at once, then a line every 0.2 s
      local n = 0
      return {body = function()
        if n == 20 then return nil end
        if n > 0 then casync.sleep(0.2) end
        n = n + 1
        lines_sent = n
        return ("line %d\n"):format(n)
      end}
    end
    return "fast"
  end))
  -- a peer that accepts connections and then neither reads nor writes
  local silent = assert(casync.tcp.listen("127.0.0.1", 0, function() casync.sleep(10) end))
  local silent_url = ("://127.0.0.1:%d/"):format(silent:port())

  -- Runs fetch inside one deadline (no timeout argument anywhere) and
  -- prints how the block ended, and whether the http call ever returned.
  local function cut(phase, fetch)
    local t0, returned = casync.now(), false
    local ok, err = pcall(function()
      local d <close> = casync.timeout(DEADLINE)
      fetch()
      returned = true
    end)
    print(("%-47s ok=%s after %.2fs, %s; returned: %s"):format(
      phase .. ":", ok, casync.now() - t0, err, returned))
  end

  print(("one deadline of %.1f s around each fetch, no timeout argument:"):format(DEADLINE))
  cut("connect (TLS handshake, the peer is silent)", function()
    http.get("https" .. silent_url)
  end)
  cut("request (16 MiB upload, the peer never reads)", function()
    http.post("http" .. silent_url, ("x"):rep(16 << 20))
  end)
  cut("response head (the handler waits 10 s)", function()
    http.get(server:url("/slow"))
  end)
  cut("body (a line every 0.2 s, 20 lines)", function()
    http.get(server:url("/drip"))
  end)
  print(("  (the server had sent the head and %d lines of the body)"):format(lines_sent))

  local t0 = casync.now()
  local ok, r = pcall(function()
    local d <close> = casync.timeout(DEADLINE)
    return assert(http.get(server:url("/fast")))
  end)
  print(("a fast fetch in the same block: ok=%s, %s in %.2fs"):format(
    ok, ok and r.status .. " " .. r.body or r, casync.now() - t0))

  -- the same deadline as a call: true and the results, or false
  t0 = casync.now()
  local done, status = casync.move_on_after(DEADLINE, function()
    return assert(http.get(server:url("/fast"))).status
  end)
  print(("move_on_after, fast: %s, %s in %.2fs"):format(done, status, casync.now() - t0))
  t0 = casync.now()
  done = casync.move_on_after(DEADLINE, http.get, server:url("/slow"))
  print(("move_on_after, slow: %s after %.2fs"):format(done, casync.now() - t0))

  -- one deadline for several fetches: it bounds them all together
  t0 = casync.now()
  local answers = 0
  local err
  ok, err = pcall(casync.fail_after, DEADLINE, function()
    for _, path in ipairs({"/fast", "/fast", "/slow", "/fast"}) do
      assert(http.get(server:url(path)))
      answers = answers + 1
    end
  end)
  print(("fail_after over /fast, /fast, /slow, /fast: ok=%s, %d answers, then %s after %.2fs")
    :format(ok, answers, err, casync.now() - t0))

  http.close_idle()
  silent:close{cancel = true}
  server:close{cancel = true} -- the /slow handlers still sleep
end

casync.run(main)
