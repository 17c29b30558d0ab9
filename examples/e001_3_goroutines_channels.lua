-- Seed 001 "Async & Concurrency", section "Code it - five languages, two
-- patterns", example E001.3: the article's two shapes (sequential: the sum
-- of the waits; concurrent: the longest one) written as Go writes them,
-- with goroutines and channels, and as Java writes them, with
-- CompletableFuture (supplyAsync, thenApply, thenCombine, allOf().join()).
--
-- As in Go, fetch_user is a plain function that waits inside: no async
-- keyword, no colouring.  casync.spawn is `go` (and supplyAsync),
-- casync.channel is `make(chan T)`, task:wait() is join().
--
-- Scaled down: fetch_user takes 0.25 s instead of the article's 1 s (E001.1
-- runs the 1 s version), so sequential is ~0.5 s and concurrent ~0.25 s.
local casync = require "casync"

local DELAY = 0.25 -- the article's asyncio.sleep(1), scaled down

local function fetch_user(id)
  casync.sleep(DELAY) -- simulate network
  return {id = id, name = "User" .. id}
end

local function timed(label, fn)
  local t0 = casync.now()
  local what = fn()
  print(("  %-26s %s in %.2fs"):format(label .. ":", what, casync.now() - t0))
end

local function main()
  ---------------------------------------------------------------------------
  print("Go: goroutines + channels")

  -- a := fetchUser(1); b := fetchUser(2)
  timed("sequential", function()
    local a = fetch_user(1)
    local b = fetch_user(2)
    return a.name .. ", " .. b.name
  end)

  -- ca, cb := make(chan User), make(chan User)
  -- go func() { ca <- fetchUser(1) }()
  -- go func() { cb <- fetchUser(2) }()
  -- a, b := <-ca, <-cb
  timed("concurrent", function()
    local ca, cb = casync.channel(), casync.channel()
    casync.spawn(function() ca:send(fetch_user(1)) end)
    casync.spawn(function() cb:send(fetch_user(2)) end)
    local a, b = ca:recv(), cb:recv()
    return a.name .. ", " .. b.name
  end)

  -- Fan-out, fan-in: one goroutine per user writes to one results channel; a
  -- closer goroutine waits for them all (sync.WaitGroup) and closes it; main
  -- ranges over the channel (for u := range results).
  timed("fan-in of 5 (range)", function()
    local results = casync.channel()
    local workers = {}
    for id = 1, 5 do
      workers[id] = casync.spawn(function() results:send(fetch_user(id)) end)
    end
    casync.spawn(function()
      casync.gather(workers) -- wg.Wait()
      results:close()
    end)
    local names = {}
    for u in results:iter() do names[#names + 1] = u.name end
    table.sort(names)
    return #names .. " users (" .. table.concat(names, ",") .. ")"
  end)

  -- select { case u := <-ch: ... case <-time.After(timeout): ... }
  timed("select with time.After", function()
    local ch = casync.channel()
    casync.spawn(function() ch:send(fetch_user(9)) end)
    local i, u = casync.select({{ch, "recv"}}, DELAY / 2)
    local first = i and u.name or "timeout"
    i, u = casync.select({{ch, "recv"}}, DELAY)
    return first .. ", then " .. (i and u.name or "timeout")
  end)

  ---------------------------------------------------------------------------
  print("Java: CompletableFuture")

  -- The few CompletableFuture methods the article's pattern uses, on tasks.
  local CompletableFuture = {}
  function CompletableFuture.supplyAsync(supplier, ...)
    return casync.spawn(supplier, ...)
  end
  function CompletableFuture.thenApply(f, fn)
    return casync.spawn(function() return fn(f:wait()) end)
  end
  function CompletableFuture.thenCombine(f, g, fn)
    return casync.spawn(function() return fn(f:wait(), g:wait()) end)
  end
  function CompletableFuture.allOf(list)
    return casync.spawn(function() return casync.gather(list) end)
  end

  -- User a = supplyAsync(() -> fetchUser(1)).join();
  -- User b = supplyAsync(() -> fetchUser(2)).join();
  timed("sequential (join each)", function()
    local a = CompletableFuture.supplyAsync(fetch_user, 1):wait()
    local b = CompletableFuture.supplyAsync(fetch_user, 2):wait()
    return a.name .. ", " .. b.name
  end)

  -- f1.thenCombine(f2, (a, b) -> a.name + " & " + b.name).join()
  timed("concurrent (thenCombine)", function()
    local f1 = CompletableFuture.supplyAsync(fetch_user, 1)
    local f2 = CompletableFuture.supplyAsync(fetch_user, 2)
    return CompletableFuture.thenCombine(f1, f2, function(a, b)
      return a.name .. " & " .. b.name
    end):wait()
  end)

  -- allOf(futures).join(), then thenApply on each result
  timed("allOf(5).join()", function()
    local futures = {}
    for id = 1, 5 do
      futures[id] = CompletableFuture.thenApply(
        CompletableFuture.supplyAsync(fetch_user, id),
        function(u) return u.name:upper() end)
    end
    local names = CompletableFuture.allOf(futures):wait()
    return names.n .. " users (" .. table.concat(names, ",", 1, names.n) .. ")"
  end)
end

casync.run(main)
