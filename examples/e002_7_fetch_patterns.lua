-- Seed 002 "Async Programming: Complete Guide", section "JavaScript
-- Async/Await", example E002.7: fetch with try/catch (fetchData),
-- Promise.all (fetchAll), Promise.allSettled (fetchWithSettled) and
-- Promise.race with an AbortController (fetchWithTimeout), against a real
-- HTTP server on loopback that this script starts itself.
--
-- fetch(url) is casync.http.get(url): it suspends only the task that calls
-- it.  try/catch is pcall; Promise.all is casync.gather (the first failure
-- cancels the rest and is raised); allSettled is casync.all_settled;
-- controller.abort() is cancelling the task that fetches (the cancellation
-- is raised inside http.get, which closes its connection): here
-- casync.race against a timer task, and the same with casync.wait_for.
local casync = require "casync"
local http = casync.http

-- The API: /users/N answers after N * 0.05 s, /broken fails, /slow takes
-- 2 s (nobody waits that long), /text is not JSON.
local server = assert(http.serve("127.0.0.1", 0, function(req)
  local id = tonumber(req.path:match("^/users/(%d+)$"))
  if id then
    if id > 10 then return {status = 404, body = "no such user"} end
    casync.sleep(id * 0.05)
    return {json = {id = id, name = ("User %d"):format(id)}}
  elseif req.path == "/broken" then
    return {status = 500, body = "database on fire"}
  elseif req.path == "/slow" then
    casync.sleep(2)
    return {json = {late = true}}
  end
  return "not JSON at all"
end))
local base = server:url()

local function ms(t0) return (casync.now() - t0) * 1000 end

-- async function fetchData(url): try { fetch, check, json } catch { log; throw }
local function fetchData(url)
  local ok, result = pcall(function()
    local response = assert(http.get(url))
    if not response.ok then
      error(("HTTP %d: %s"):format(response.status, response.reason), 0)
    end
    return assert(response:json())
  end)
  if not ok then
    print(("Fetch failed: %s (%s)"):format(tostring(result), url:sub(#base + 1)))
    error(result, 0)
  end
  return result
end

-- async function fetchAll(urls): Promise.all
local function fetchAll(urls)
  local promises = {}
  for i, url in ipairs(urls) do
    promises[i] = function() return fetchData(url) end
  end
  return casync.gather(promises)
end

-- async function fetchWithSettled(urls): Promise.allSettled
local function fetchWithSettled(urls)
  local promises = {}
  for i, url in ipairs(urls) do
    promises[i] = function() return fetchData(url) end
  end
  local results = casync.all_settled(promises)
  for index, result in ipairs(results) do
    if result.ok then
      print(("URL %d: fulfilled, %s"):format(index, result.value.name))
    else
      print(("URL %d: rejected, %s"):format(index, tostring(result.error)))
    end
  end
  return results
end

-- async function fetchWithTimeout(url, timeout): Promise.race with an
-- AbortController; the timer aborts (cancels) the fetch.
local function fetchWithTimeout(url, timeout)
  local fetch = casync.spawn(fetchData, url)
  local timer = casync.spawn(function()
    casync.sleep(timeout)
    fetch:cancel("AbortError: the operation was aborted") -- controller.abort()
  end)
  local ok, result = pcall(fetch.wait, fetch)
  timer:cancel() -- clearTimeout(timeoutId)
  if not ok then error(result, 0) end
  return result
end

local function main()
  print("-- fetchData (try/catch)")
  local user = fetchData(base .. "users/1")
  print(("fetchData: %s (id %d)"):format(user.name, user.id))
  local ok, err = pcall(fetchData, base .. "broken")
  print(("fetchData(/broken) threw: %s (ok=%s)"):format(tostring(err), tostring(ok)))
  ok, err = pcall(fetchData, base .. "text")
  print(("fetchData(/text) threw: %s"):format(tostring(err):match("^[^:]+: [^:]+")))

  print("-- fetchAll (Promise.all)")
  local t0 = casync.now()
  local users = fetchAll({base .. "users/3", base .. "users/1", base .. "users/2"})
  local names = {}
  for i = 1, users.n do names[i] = users[i].name end
  print(("fetchAll: %s in %.0fms (the slowest takes 150 ms)"):format(
    table.concat(names, ", "), ms(t0)))
  t0 = casync.now()
  ok, err = pcall(fetchAll, {base .. "users/4", base .. "users/99", base .. "users/2"})
  print(("fetchAll with a 404 rejects: %s after %.0fms (the rest cancelled)"):format(
    tostring(err), ms(t0)))

  print("-- fetchWithSettled (Promise.allSettled)")
  t0 = casync.now()
  fetchWithSettled({base .. "users/2", base .. "users/42", base .. "broken", base .. "users/3"})
  print(("fetchWithSettled: every result in %.0fms"):format(ms(t0)))

  print("-- fetchWithTimeout (Promise.race + AbortController)")
  t0 = casync.now()
  local data = fetchWithTimeout(base .. "users/2", 0.5)
  print(("fetchWithTimeout(users/2, 500ms): %s in %.0fms"):format(data.name, ms(t0)))
  t0 = casync.now()
  ok, err = pcall(fetchWithTimeout, base .. "slow", 0.2)
  print(("fetchWithTimeout(slow, 200ms): aborted after %.0fms: %s (kind %s)"):format(
    ms(t0), err.message, err.kind))
  -- the same with casync.wait_for, which cancels the fetch on timeout itself
  t0 = casync.now()
  ok, err = pcall(casync.wait_for, function() return fetchData(base .. "slow") end, 0.2)
  print(("wait_for(slow, 200ms): %s after %.0fms"):format(err.kind, ms(t0)))

  -- an aborted fetch left no connection behind in the pool
  print(("idle connections kept for reuse: %d"):format(http.close_idle()))
  server:close{cancel = true}
end

casync.run(main)
