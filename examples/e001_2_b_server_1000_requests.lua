-- Seed 001 "Async & Concurrency", section "Try it — when does async
-- help?", example E001.2, part (b): a web server handling 1,000
-- simultaneous requests, mostly waiting on the database.  The article's
-- answer: this is the case async is for.  (Parts (a) and (c) are in
-- e001_2_which_workload_benefits.lua.)
--
-- The server is casync.http.serve on loopback: each request runs in its
-- own task, which waits 0.5 s on a simulated database (casync.sleep)
-- before answering.  A client in the same script fires 1,000 requests at
-- once (1,000 tasks, 1,000 connections).  One thread serves them all; the
-- waits overlap, so the whole thing takes about one wait, not 1,000.
local casync = require "casync"
local http = casync.http

local DB_WAIT = 0.5

-- 1,000 requests need ~2,000 descriptors here (client and server ends).
local function fd_limit()
  local p = io.popen("ulimit -n")
  local n = p and tonumber(p:read("l") or "")
  if p then p:close() end
  return n or 1024
end
local N = 1000
if fd_limit() < 2 * N + 64 then
  N = (fd_limit() - 64) // 2
  print(("(the descriptor limit is %d: %d requests instead of 1,000)"):format(fd_limit(), N))
end

local in_flight, max_in_flight = 0, 0

local function query_database(id)
  casync.sleep(DB_WAIT) -- SELECT ... : the task waits, the thread does not
  return {id = id, name = ("user%d"):format(id)}
end

local server = assert(http.serve("127.0.0.1", 0, function(req)
  in_flight = in_flight + 1
  if in_flight > max_in_flight then max_in_flight = in_flight end
  local row = query_database(tonumber(req.query.id))
  in_flight = in_flight - 1
  return {json = row}
end, {max_connections = N + 16}))

local function main()
  local t0 = casync.now()
  local clients = {}
  for i = 1, N do
    clients[i] = function()
      local r = assert(http.get(server:url("/user?id=" .. i), {timeout = 30}))
      return r:json().name
    end
  end
  local names = casync.gather(clients)
  local took = casync.now() - t0

  local ok = 0
  for i = 1, names.n do
    if names[i] == "user" .. i then ok = ok + 1 end
  end
  print(("%d requests, each waiting %.1f s on the database"):format(N, DB_WAIT))
  print(("answered correctly: %d; at most %d in flight in the server at once"):format(
    ok, max_in_flight))
  print(("total: %.2fs with one thread (one request after another: %.0f s)"):format(
    took, N * DB_WAIT))
  local st = server:stats()
  print(("server: %d connections, %d requests"):format(st.accepted, st.requests))
  http.close_idle()
  server:close()
end

casync.run(main)
