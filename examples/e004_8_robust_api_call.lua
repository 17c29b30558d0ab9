-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "Error Handling and Timeouts", example E004.8: robustApiCall,
-- a fetch with a timeout and a status check that never throws but returns
-- {success = true, data = ...} or {success = false, error = "..."},
-- against a local HTTP server this script starts: one endpoint that
-- answers, one that fails with 503, one that is too slow.
--
-- The article's AbortController + setTimeout is casync.wait_for around the
-- request: on timeout it cancels the request (which closes its connection)
-- and raises an error of kind "timeout".  (casync.http.get also takes a
-- timeout of its own: opts.timeout; both are shown.)  The article's 5000
-- ms timeout is scaled down to 300 ms.
local casync = require "casync"
local http = casync.http

local server = assert(http.serve("127.0.0.1", 0, function(req)
  if req.path == "/api/user" then
    casync.sleep(0.05)
    return {json = {id = 7, name = "Ada Lovelace"}}
  elseif req.path == "/api/flaky" then
    return {status = 503, body = "try again later"}
  elseif req.path == "/api/slow" then
    casync.sleep(2) -- far longer than anyone waits
    return {json = {}}
  end
  return {status = 404, body = "no such endpoint"}
end))

local function robustApiCall(url, timeoutMs)
  timeoutMs = timeoutMs or 5000
  -- try { ... } catch (error) { ... }: pcall around the whole call
  local ok, result = pcall(casync.wait_for, function()
    local response = assert(http.get(url))
    if not response.ok then
      error(("HTTP %d: %s"):format(response.status, response.reason), 0)
    end
    local data = assert(response:json())
    return {success = true, data = data}
  end, timeoutMs / 1000)
  if ok then return result end
  if casync.is_error(result, "timeout") then -- error.name === 'AbortError'
    return {success = false, error = "Request timed out"}
  end
  return {success = false, error = tostring(result)}
end

local function show(label, r, t0)
  local took = (casync.now() - t0) * 1000
  if r.success then
    print(("%-8s { success: true, data: { id: %d, name: '%s' } } in %.0fms")
      :format(label, r.data.id, r.data.name, took))
  else
    print(("%-8s { success: false, error: '%s' } in %.0fms"):format(label, r.error, took))
  end
end

local function main()
  local base = server:url("/api/")
  local t0 = casync.now()
  show("ok:", robustApiCall(base .. "user", 300), t0)
  t0 = casync.now()
  show("error:", robustApiCall(base .. "flaky", 300), t0)
  t0 = casync.now()
  show("timeout:", robustApiCall(base .. "slow", 300), t0)

  -- all three at once: each has its own timeout, none waits for another
  t0 = casync.now()
  local a, b, c = casync.gather(function() return robustApiCall(base .. "user", 300) end,
                                function() return robustApiCall(base .. "flaky", 300) end,
                                function() return robustApiCall(base .. "slow", 300) end)
  print(("together: success %s, %s / %s, %s / %s, %s in %.0fms"):format(
    a.success, a.data.name, b.success, b.error, c.success, c.error,
    (casync.now() - t0) * 1000))

  -- the same timeout through the client's own option
  t0 = casync.now()
  local r, err = http.get(base .. "slow", {timeout = 0.3})
  print(("http.get(slow, {timeout = 0.3}): %s, kind %s, after %.0fms"):format(
    tostring(r), err.kind, (casync.now() - t0) * 1000))

  http.close_idle()
  server:close{cancel = true}
end

casync.run(main)
