-- examples_spec: runs every script in examples/ with the casync runner and
-- checks what its article claims: output order, results, and the timing
-- shape (sequential ~ the sum of the waits, concurrent ~ the longest).
--
-- Timing margins are generous: a sleep never returns early, so lower bounds
-- are exact (">= the sum", ">= the longest"); upper bounds allow +0.25 s for
-- concurrent shapes and +0.5 s for sequential chains, so a loaded machine does
-- not make the spec flaky, while a sequential run passed off as concurrent
-- still fails.  When other processes took more than a quarter of a core
-- while an example ran (a build, another test run), a check that fails runs
-- again with its upper bounds and speed-ups relaxed, as under the
-- sanitizers: order, results and lower bounds are always checked.
--
-- The examples mostly sleep, so they are all started at once (in setup; but
-- those in EXCLUSIVE, which need the cores alone) and each `it` collects one
-- of them: the spec takes about as long as the
-- longest example (~4 s) instead of the sum (~25 s).
--
-- Every examples/*.lua must have an entry in `checks` below, and every entry
-- must have its file: adding an example without a check fails the spec.

local now = require("casync").now -- helper.lua points require at the build

local build = os.getenv("CASYNC_BUILD") or "build"
local RUNNER = build .. "/casync"
local DIR = "examples"
local TIME_LIMIT = 60 -- seconds per example, enforced with timeout(1)
-- CASYNC_EXAMPLE=file runs that example's check alone (CTest's per-example
-- tests); CASYNC_EXAMPLE=none runs only the checks of the examples/ index.
local ONLY = os.getenv("CASYNC_EXAMPLE")

-- The examples issues 2 and 3 ask for; each must exist as
-- examples/eSSS_N_*.lua.
local REQUIRED_IDS = {
  "E000.1", "E000.2", "E001.1", "E002.1", "E002.2", "E002.3", "E002.4",
  "E002.5", "E002.6", "E002.14", "E003.1", "E004.2", "E004.3", "E004.4",
  "E004.6", "E004.7", "E004.10", "E004.12", "E004.13", "E004.14",
  -- issue 3: channels, select, synchronization, rate limiting, retries
  "E001.3", "E001.4", "E002.8", "E002.9", "E002.12", "E004.9",
  -- issue 5: worker threads
  "E002.10", "E002.11", "E003.2", "E004.5",
  -- issue 5: processes, files, the watchdog
  "E001.2", "E002.13", "E003.3", "E003.4", "E004.1",
  -- issue 4: HTTP against a local server the example starts
  "E002.7", "E004.8", "E004.11",
  -- issue 10: article 001's two timelines, drawn by casync.timeline
  "E001.5",
  -- issues 9 and 11, item 7: a deadline around a whole fetch, a WebSocket chat
  "E009.1", "E011.3",
}

-- Examples that measure a parallel speed-up need the cores to themselves:
-- they are not started with the others but one at a time, each once every
-- other example has ended.
local EXCLUSIVE = {
  ["e002_10_cpu_and_io_pools.lua"] = true,
  ["e003_2_threads_parallel.lua"] = true,
  ["e004_5_heartbeat_worker_thread.lua"] = true,
  ["e004_1_multiprocessing_pool.lua"] = true,
  ["e001_2_which_workload_benefits.lua"] = true,
}

---------------------------------------------------------------------------
-- helpers

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function list_examples()
  local files = {}
  local ok, lfs = pcall(require, "lfs")
  if ok then
    for name in lfs.dir(DIR) do
      if name:match("%.lua$") then files[#files + 1] = name end
    end
  else
    local p = assert(io.popen("ls -1 " .. shell_quote(DIR)))
    for name in p:lines() do
      if name:match("%.lua$") then files[#files + 1] = name end
    end
    p:close()
  end
  table.sort(files)
  return files
end

-- "e004_14_error_boundaries.lua" -> "E004.14"
local function id_of(file)
  local seed, n = file:match("^e(%d%d%d)_(%d+)_")
  return seed and ("E%s.%s"):format(seed, n)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function lines_of(s)
  local t = {}
  for l in (s .. "\n"):gmatch("(.-)\n") do t[#t + 1] = l end
  if t[#t] == "" then t[#t] = nil end
  return t
end

local function has(s, sub) return s:find(sub, 1, true) ~= nil end

-- Asserts that each string of `expected` appears (as a plain substring) on a
-- line after the line of the previous one; returns the line indexes.
local function assert_in_order(out, expected)
  local lines, at, where = lines_of(out), 0, {}
  for _, want in ipairs(expected) do
    local found
    for i = at + 1, #lines do
      if has(lines[i], want) then found = i break end
    end
    assert(found, ("expected %q after line %d of the output:\n%s"):format(want, at, out))
    where[#where + 1], at = found, found
  end
  return where
end

-- Asserts the first lines of the output are exactly `expected`.
local function assert_lines(out, expected, first)
  local lines = lines_of(out)
  first = first or 1
  for i, want in ipairs(expected) do
    assert(lines[first + i - 1] == want, ("line %d: expected %q, got %q in:\n%s")
      :format(first + i - 1, want, tostring(lines[first + i - 1]), out))
  end
end

local function assert_absent(out, sub)
  assert(not has(out, sub), ("did not expect %q in:\n%s"):format(sub, out))
end

-- The number captured by `pattern` (a Lua pattern with one capture).
local function num(out, pattern)
  local v = tonumber(out:match(pattern))
  assert(v, ("no number matching %q in:\n%s"):format(pattern, out))
  return v
end

-- Under the sanitizers (test.sh sets CASYNC_SANITIZED) programs run several
-- times slower and the machine is shared with the checks themselves: order,
-- results and lower bounds (a sleep never ends early) are still checked,
-- upper bounds and parallel speed-ups are not (bench/ measures those).
-- `relaxed` says so to the checks; it is also true while a check runs a
-- second time because other processes kept the machine busy during the
-- example's run (see checked() below).
local SANITIZED = os.getenv("CASYNC_SANITIZED") ~= nil
local relaxed = SANITIZED

local function within(v, lo, hi, what)
  if relaxed then hi = math.huge end
  assert(v >= lo and v <= hi,
    ("%s: %s not within [%s, %s]"):format(what, v, lo, hi))
end

-- The part of the output from the line containing `from` up to (not
-- including) the line containing `to` (or the end).
local function section(out, from, to)
  local s = out:find(from, 1, true)
  assert(s, ("no section %q in:\n%s"):format(from, out))
  local e = to and out:find(to, s + #from, true)
  return out:sub(s, e and e - 1 or -1)
end

-- The line number of the first line of `file` containing `sub`.
local function line_of(file, sub)
  for i, l in ipairs(lines_of(read_file(DIR .. "/" .. file))) do
    if has(l, sub) then return i end
  end
  error(("%q not found in %s"):format(sub, file))
end

-- Shapes: concurrent within [longest, longest + 0.25], sequential within
-- [sum, sum + 0.5].
local function concurrent(v, longest, what) within(v, longest, longest + 0.25, what) end
local function sequential(v, sum, what) within(v, sum, sum + 0.5, what) end

---------------------------------------------------------------------------
-- the checks, one per example file: check(out, file)

local checks = {}

checks["e000_1_gather_fetch_data.lua"] = function(out)
  assert_lines(out, {
    "Fetching data for user1...",
    "Fetching data for user2...",
    "Fetching data for user3...",
    "Data for user2 received!",
    "Data for user1 received!",
    "Data for user3 received!",
    "All results: ['user1 data', 'user2 data', 'user3 data']",
  })
  concurrent(num(out, "Total: ([%d.]+)s"), 3, "gather of 2 s, 1 s, 3 s")
end

checks["e000_2_promise_all_fetch_data.lua"] = function(out)
  assert_lines(out, {
    "Fetching data for user1...",
    "Fetching data for user2...",
    "Fetching data for user3...",
    "Data for user2 received!",
    "Data for user1 received!",
    "Data for user3 received!",
    "All results: user1 data,user2 data,user3 data",
  })
  concurrent(num(out, "Total: ([%d.]+)s"), 3, "Promise.all of 2 s, 1 s, 3 s")
end

checks["e001_1_fetch_user_sequential_vs_concurrent.lua"] = function(out)
  assert_in_order(out, {"Sequential:", "Concurrent:"})
  assert.truthy(out:match("Sequential: [%d.]+s %(User1, User2%)"))
  assert.truthy(out:match("Concurrent: [%d.]+s %(User1, User2%)"))
  sequential(num(out, "Sequential: ([%d.]+)s"), 2, "two fetch_user in a row")
  concurrent(num(out, "Concurrent: ([%d.]+)s"), 1, "two fetch_user gathered")
end

checks["e002_1_sequential_vs_gather.lua"] = function(out)
  local urls = "Results: ['http://api1.com', 'http://api2.com', 'http://api3.com']"
  assert_in_order(out, {"Sequential:", urls, "Sequential time:",
                        "Concurrent:", urls, "Concurrent time:"})
  sequential(num(out, "Sequential time: ([%d.]+)s"), 3, "three fetch_data in a row")
  concurrent(num(out, "Concurrent time: ([%d.]+)s"), 1, "three fetch_data gathered")
end

checks["e002_2_async_context_manager.lua"] = function(out)
  assert_lines(out, {
    "-- main",
    "Connected to database",
    "Query result: alice, bob",
  })
  assert_in_order(out, {
    "-- main", "Connected to database", "Query result: alice, bob",
    "Disconnected from database (cleanup took",
    "-- database_example", "Connected to database", "Logs: test",
    "Disconnected from database (cleanup took",
    "-- an error inside the block", "Connected to database",
    "Disconnected from database (cleanup took",
    "caught: no such table: missing_table (ok=false)",
    "-- the task is cancelled inside the block", "Connected to database",
    "Disconnected from database (cleanup took",
    "task cancelled: true, error kind: cancelled (ok=false)",
  })
  assert_absent(out, "not reached")
  -- on error and on cancellation, __close sees the error in flight
  assert.truthy(section(out, "-- an error", "caught:"):find("closing on error", 1, true))
  assert.truthy(section(out, "-- the task is cancelled"):find("closing on error", 1, true))
  assert.falsy(section(out, "-- main", "-- database_example"):find("closing on error", 1, true))
  -- every __close really suspended for its 0.05 s
  local n = 0
  for took in out:gmatch("cleanup took ([%d.]+)s") do
    n = n + 1
    within(tonumber(took), 0.05, 0.3, "__close sleep")
  end
  assert.equals(4, n)
end

checks["e002_3_wait_for_timeout.lua"] = function(out)
  assert_in_order(out, {
    "http://fast-api.com: Data from http://fast-api.com after",
    "Task timed out! (http://slow-api.com, after",
    "fast result: http://fast-api.com, slow result: nil",
    "finished fetches: ",
  })
  assert.truthy(has(out, "slow work cancelled: true)"))
  concurrent(num(out, "slow%-api%.com, after ([%d.]+)s"), 0.2, "timeout of 0.2 s")
  concurrent(num(out, "fast%-api%.com after ([%d.]+)s"), 0.05, "fast call")
  -- the cancelled slow fetch never finished, even after its 0.5 s had passed
  assert.equals("http://fast-api.com", out:match("finished fetches: ([^\n]*)"))
end

checks["e002_4_wait_first_completed.lua"] = function(out)
  assert_lines(out, {
    "  done: http://api1.com",
    "  remaining: http://api2.com",
    "  remaining: http://api3.com",
  }, 2) -- line 1 holds a timing, checked below
  assert.truthy(out:match("^Completed: 1, Pending: 2 %(after [%d.]+s%)"))
  concurrent(num(out, "Completed: 1, Pending: 2 %(after ([%d.]+)s%)"), 0.1,
             "wait(first_completed)")
  concurrent(num(out, "All finished after ([%d.]+)s"), 0.3, "all three")
end

checks["e002_4_scope_first_completed.lua"] = function(out)
  assert_lines(out, {
    "  done: http://api1.com",
    "  remaining: http://api2.com",
    "  remaining: http://api3.com",
  }, 2) -- line 1 holds a timing, checked below
  assert.truthy(out:match("^Completed: 1, Pending: 2 %(after [%d.]+s%)"))
  concurrent(num(out, "Completed: 1, Pending: 2 %(after ([%d.]+)s%)"), 0.1,
             "select of the scope's tasks")
  concurrent(num(out, "All finished after ([%d.]+)s"), 0.3, "all three")
  -- api2's failure at 0.2 s cancelled api3 (due at 0.3 s) and was raised
  assert_in_order(out, {"One fails: ok=false, connection reset by http://api2.com (after",
                        "  api3 cancelled: true (kind cancelled)"})
  concurrent(num(out, "api2%.com %(after ([%d.]+)s%)"), 0.2, "the scope failing")
end

checks["e002_5_add_done_callback.lua"] = function(out)
  local lines = assert_in_order(out, {"awaited http://api.com: ok",
                                      "awaited http://down.example.com: error: " ..
                                      "connection refused: http://down.example.com",
                                      "done"})
  -- each callback ran, saw the result or the failure, before the end
  local ok_cb = assert_in_order(out, {"Task completed: http://api.com"})[1]
  local fail_cb = assert_in_order(out,
    {"Task failed: connection refused: http://down.example.com"})[1]
  assert.is_true(ok_cb < lines[3] and fail_cb < lines[3])
  assert.equals("done", lines_of(out)[#lines_of(out)])
end

checks["e002_6_gather_return_exceptions.lua"] = function(out)
  assert_lines(out, {
    "Option 1: all_settled",
    "Task 1 succeeded: Task task1 succeeded",
    "Task 2 failed: Task task2 failed!",
    "Task 3 succeeded: Task task3 succeeded",
  })
  concurrent(num(out, "Option 1 time: ([%d.]+)s"), 0.5, "all_settled of three 0.5 s tasks")
  local opt2 = section(out, "Option 2: wait")
  assert.truthy(has(opt2, "done: 3, pending: 0"))
  assert.truthy(has(opt2, "Result: Task task1 succeeded"))
  assert.truthy(has(opt2, "Exception: Task task2 failed!"))
  assert.truthy(has(opt2, "Result: Task task3 succeeded"))
  concurrent(num(out, "Option 2 time: ([%d.]+)s"), 0.5, "wait of three 0.5 s tasks")
end

checks["e002_14_performance_comparison.lua"] = function(out)
  assert.truthy(has(out, "Fetched: 100 sequentially, 100 concurrently"))
  local seq = num(out, "Sequential: ([%d.]+)s")
  local conc = num(out, "Concurrent: ([%d.]+)s")
  within(seq, 1.0, 2.0, "100 x 10 ms in a row")
  concurrent(conc, 0.01, "100 x 10 ms gathered")
  -- the article claims ~100x; bench/ holds the exact figure, this spec only
  -- asks for an order of magnitude
  local speedup = num(out, "Speedup: ([%d.]+)x")
  assert(relaxed or speedup >= 10, ("speed-up %s below 10x"):format(speedup))
end

checks["e003_1_concurrent_not_parallel.lua"] = function(out)
  -- concurrent: both in progress before either ends
  assert_lines(out, {
    "fetch_data(1) started",
    "fetch_data(2) started",
    "fetch_data(1) finished",
    "fetch_data(2) finished",
  })
  assert.truthy(has(out, "-> data 1, data 2 in"))
  concurrent(num(out, "%-> data 1, data 2 in ([%d.]+)s"), 0.3, "two 0.3 s waits gathered")
  -- not parallel: the CPU-bound tasks never overlap, and take the sum
  assert_lines(out, {
    "work(1) started",
    "work(1) finished",
    "work(2) started",
    "work(2) finished",
  }, 6)
  within(num(out, "gather%(work%(1%), work%(2%)%) in ([%d.]+)s"), 0.4, 0.65,
         "two 0.2 s CPU-bound tasks gathered")
end

checks["e004_2_fetch_multiple_users.lua"] = function(out)
  -- all three started at once (within a few ms), before any ended
  local starts = assert_in_order(out, {"start /api/users/1", "start /api/users/2",
                                       "start /api/users/3"})
  assert.same({1, 2, 3}, starts)
  local n = 0
  for t in out:gmatch("([%d.]+)s start /api/users/%d") do
    n = n + 1
    within(tonumber(t), 0, 0.05, "start time of a request")
  end
  assert.equals(3, n)
  assert_in_order(out, {"done  /api/users/2", "done  /api/users/3", "done  /api/users/1",
                        "users: 1, 2, 3"})
  concurrent(num(out, "Total: ([%d.]+)s"), 0.2, "three requests gathered")
end

checks["e004_3_event_loop_order.lua"] = function(out)
  assert_lines(out, {
    "1: Start",
    "4: End",
    "3: Promise microtask",
    "2: Timer callback",
    "Output: 1, 4, 3, 2",
  })
  assert.equals(5, #lines_of(out))
end

checks["e004_4_fetch_users_seq_vs_concurrent.lua"] = function(out)
  assert_in_order(out, {"Sequential:", "Concurrent:",
                        "users: User1 User2 User3 / User1 User2 User3"})
  sequential(num(out, "Sequential: (%d+)ms") / 1000, 0.6, "three fetchUser in a row")
  concurrent(num(out, "Concurrent: (%d+)ms") / 1000, 0.2, "three fetchUser gathered")
end

checks["e004_6_process_items.lua"] = function(out)
  assert.truthy(out:match("Sequential: %d+ms %-> 1,4,9,16,25\n"))
  assert.truthy(out:match("Concurrent: %d+ms %-> 1,4,9,16,25\n"))
  sequential(num(out, "Sequential: (%d+)ms") / 1000, 0.5, "five items in a row")
  concurrent(num(out, "Concurrent: (%d+)ms") / 1000, 0.1, "five items at once")
end

checks["e004_7_foreach_async.lua"] = function(out)
  local users = {"updated alice", "updated bob", "updated carol"}
  local function updates_then_done(s)
    local order = assert_in_order(s, {users[1], users[2], users[3], "All done!"})
    return order
  end
  -- the bug: "All done!" before any update; they land later
  local bug = section(out, "forEach + spawn (the bug):", "for loop (sequential):")
  assert_in_order(bug, {"All done!", "0 of 3 updated when it returned",
                        users[1], users[2], users[3], "3 of 3 updated 0.2 s later"})
  -- the correct forms: every update before "All done!"
  local seq = section(out, "for loop (sequential):", "forEach with a plain callback")
  updates_then_done(seq)
  sequential(num(seq, "3 of 3 updated when it returned, after ([%d.]+)s"), 0.3, "for loop")
  local each = section(out, "forEach with a plain callback", "spawn + gather")
  updates_then_done(each)
  sequential(num(each, "3 of 3 updated when it returned, after ([%d.]+)s"), 0.3,
             "forEach, plain callback")
  local conc = section(out, "spawn + gather (concurrent):")
  updates_then_done(conc)
  concurrent(num(conc, "3 of 3 updated when it returned, after ([%d.]+)s"), 0.1, "gather")
end

checks["e004_10_microservices.lua"] = function(out)
  assert_in_order(out, {"Sequential:", "Concurrent:", "Mixed:",
                        "mixed: region eu, timezone UTC+1"})
  sequential(num(out, "Sequential: ([%d.]+)ms") / 1000, 0.45, "three services in a row")
  concurrent(num(out, "Concurrent: ([%d.]+)ms") / 1000, 0.15, "three services at once")
  -- mixed: one call, then two at once = 2 x 150 ms
  concurrent(num(out, "Mixed: ([%d.]+)ms") / 1000, 0.3, "profile, then two at once")
end

checks["e004_12_task_when_all.lua"] = function(out)
  assert_in_order(out, {"WhenAll:", "awaiting the finished tasks again:",
                        "UserData: Profile=Ada, Preferences=dark, Activity=7 posts",
                        "Total:"})
  concurrent(num(out, "WhenAll: (%d+)ms") / 1000, 0.15, "Task.WhenAll of three")
  -- no waiting: far below one 150 ms call (allowing for a descheduled process)
  within(num(out, "awaiting the finished tasks again: (%d+)ms"), 0, 50,
         "await of finished tasks (ms)")
  concurrent(num(out, "Total: (%d+)ms") / 1000, 0.15, "GetUserDataAsync")
end

checks["e004_13_when_not_to_use_async.lua"] = function(out)
  assert_lines(out, {"calculateTax(100, 0.2) = 20.00"})
  assert.truthy(out:match("hashPassword%('hunter2'%) = %x+\n"))
  assert.truthy(has(out, "checkout one after the other: 120.00, 107.00 in"))
  assert.truthy(has(out, "checkout under gather: 120.00, 107.00 in"))
  sequential(num(out, "one after the other: [%d.]+, [%d.]+ in ([%d.]+)s"), 0.2,
             "two plain checkouts")
  concurrent(num(out, "under gather: [%d.]+, [%d.]+ in ([%d.]+)s"), 0.1,
             "two plain checkouts gathered")
  -- suspending outside casync's tasks is a clear error naming the function
  local msg = out:match("checkout in a plain coroutine: ok=false, ([^\n]*)")
  assert(msg, out)
  assert.truthy(msg:find("sleep", 1, true))
  assert.truthy(msg:find("cannot suspend", 1, true))
end

checks["e004_14_error_boundaries.lua"] = function(out, file)
  local f = "e004_14_error_boundaries.lua:"
  local parse_line = line_of(file, "local data = parseResponse(body)")
  local xpcall_line = line_of(file, "xpcall(riskyOperation")
  local spawn_line = line_of(file, 'casync.spawn({name = "riskyOperation"}')

  -- inside one task: the traceback spans the suspensions, from the boundary
  -- (safeAsyncOperation's xpcall) down through riskyOperation to parseResponse
  local inside = section(out, "== error boundary inside one task", "== across a task boundary")
  assert_in_order(inside, {
    "Operation failed:\tJsonError: unexpected token '<' at position 0",
    "stack traceback:",
    "in upvalue 'parseResponse'",
    f .. parse_line .. ":",
    f .. xpcall_line .. ":",
    "re-thrown to the caller: ok=false, same value=true",
  })

  -- across a task: the same error value, and where it failed and was spawned
  local across = section(out, "== across a task boundary", "== monitoredOperation")
  assert_in_order(across, {
    "task:wait() raised: JsonError: unexpected token '<' at position 0 (same value=true)",
    "stack traceback:",
    "in upvalue 'parseResponse'",
    f .. parse_line .. ":",
    "'riskyOperation' was spawned at ",
  })
  assert.truthy(across:find("'riskyOperation' was spawned at [^\n]*" .. f .. spawn_line))

  -- monitoredOperation: the timer is printed on success, failure and timeout
  local mon = section(out, "== monitoredOperation")
  assert_in_order(mon, {"Starting fetchUser", "Completed fetchUser", "fetchUser: ",
                        "result: Ada",
                        "Starting riskyOperation", "riskyOperation: ",
                        "failed: JsonError: unexpected token",
                        "Starting slowReport", "slowReport: ", "gave up: timeout"})
  assert_absent(mon, "Completed riskyOperation")
  assert_absent(mon, "Completed slowReport")
  concurrent(num(mon, "fetchUser: ([%d.]+)ms") / 1000, 0.1, "fetchUser timer")
  concurrent(num(mon, "riskyOperation: ([%d.]+)ms") / 1000, 0.05, "riskyOperation timer")
  concurrent(num(mon, "slowReport: ([%d.]+)ms") / 1000, 0.1, "slowReport timer (timeout)")
end

checks["e001_3_goroutines_channels.lua"] = function(out)
  assert_in_order(out, {"Go: goroutines + channels", "sequential:", "concurrent:",
                        "fan-in of 5 (range):", "select with time.After:",
                        "Java: CompletableFuture", "sequential (join each):",
                        "concurrent (thenCombine):", "allOf(5).join():"})
  local go, java = section(out, "Go:", "Java:"), section(out, "Java:")
  sequential(num(go, "sequential: +User1, User2 in ([%d.]+)s"), 0.5,
             "two fetch_user in a row")
  concurrent(num(go, "concurrent: +User1, User2 in ([%d.]+)s"), 0.25,
             "two goroutines, two channels")
  concurrent(num(go, "fan%-in of 5 %(range%): +5 users " ..
                     "%(User1,User2,User3,User4,User5%) in ([%d.]+)s"), 0.25,
             "five goroutines, one channel, range until closed")
  -- the select times out at 0.125 s, the second one gets the value
  concurrent(num(go, "select with time%.After: +timeout, then User9 in ([%d.]+)s"),
             0.25, "select with a timeout")
  sequential(num(java, "sequential %(join each%): +User1, User2 in ([%d.]+)s"), 0.5,
             "supplyAsync(...).join() twice")
  concurrent(num(java, "concurrent %(thenCombine%): +User1 & User2 in ([%d.]+)s"),
             0.25, "thenCombine")
  concurrent(num(java, "allOf%(5%)%.join%(%): +5 users " ..
                       "%(USER1,USER2,USER3,USER4,USER5%) in ([%d.]+)s"), 0.25,
             "allOf of five thenApply")
end

checks["e001_4_race_condition_lock.lua"] = function(out)
  assert_in_order(out, {"no suspension, no lock:", "suspension between, no lock:",
                        "suspension between, lock:"})
  local function lost(label)
    local expected, got, n = out:match(label:gsub("%p", "%%%0") ..
      ": +expected (%d+), got (%d+) %((%d+) updates lost%)")
    assert(expected, ("no result for %q in:\n%s"):format(label, out))
    assert.equals(2000, tonumber(expected))
    assert.equals(tonumber(expected) - tonumber(got), tonumber(n))
    return tonumber(n)
  end
  assert.equals(0, lost("no suspension, no lock"))
  assert(lost("suspension between, no lock") > 0, "the race lost no update:\n" .. out)
  assert.equals(0, lost("suspension between, lock"))
end

checks["e002_8_async_iterators.lua"] = function(out)
  local lines = assert_in_order(out, {
    "Processing 3 items (page 1, at", "Processing 3 items (page 2, at",
    "Processing 2 items (page 3, at", "All pages: 3 pages, 8 items, 4 fetches in",
    "event 1: tock", "event 2: tick", "event 3: tock", "event 4: tick",
    "event 5: tock", "Stopped after 5 events; event source closed: true"})
  assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, lines)
  -- the producer suspends between pages: page i is there after i fetches
  for i = 1, 3 do
    -- (printed to 0.01 s)
    within(num(out, "page " .. i .. ", at ([%d.]+)s"), 0.05 * i - 0.01, 0.05 * i + 0.25,
           "page " .. i)
  end
  sequential(num(out, "4 fetches in ([%d.]+)s"), 0.2 - 0.01, "four 0.05 s fetches in a row")
  -- events come as the source produces them (every 0.02 s); the loop's break
  -- closed the source
  for i = 1, 5 do
    within(num(out, "event " .. i .. ": %a+ at ([%d.]+)s"), 0.02 * i - 0.01,
           0.02 * i + 0.25, "event " .. i)
  end
  assert_absent(out, "event 6")
end

checks["e002_9_rate_limit_retry.lua"] = function(out)
  assert_lines(out, {"second 1: 10 requests", "second 2: 10 requests",
                     "second 3: 5 requests"})
  -- the limit holds: never more than 10 in a 1 s window, and 25 requests
  -- (10 at once, then 10 per second) take at least 2 s
  within(num(out, "at most (%d+) in any 1 s window"), 1, 10, "requests in a window")
  within(num(out, "25 requests in ([%d.]+)s"), 2.0, 2.5, "25 requests at 10/s")
  within(num(out, "measured rate: ([%d.]+) requests/s"), 5, 10, "measured rate")
  -- retries at 0.1 s, then 0.2 s later (1 s, 2 s scaled down 10x)
  local flaky = section(out, "fetchWithRetry, failing twice:", "fetchWithRetry, always")
  assert_in_order(flaky, {"attempt 1 at", "retrying in 0.1s", "attempt 2 at",
                          "retrying in 0.2s", "attempt 3 at", "succeeded: status 200"})
  within(num(flaky, "attempt 2 at ([%d.]+)s"), 0.1, 0.3, "first retry")
  within(num(flaky, "attempt 3 at ([%d.]+)s"), 0.3, 0.6, "second retry")
  local down = section(out, "fetchWithRetry, always failing:")
  assert_in_order(down, {"attempt 1 at", "retrying in 0.1s", "attempt 2 at",
                         "retrying in 0.2s", "attempt 3 at",
                         "503 from https://api.example.com/down (ok=false)"})
  assert_absent(down, "attempt 4")
  within(num(down, "gave up after ([%d.]+)s"), 0.3, 0.6, "three attempts")
end

checks["e002_12_semaphore_limit.lua"] = function(out)
  assert_in_order(out, {"semaphore(3): 12 urls, 11 ok, 1 timed out after 0.3s, in",
                        "max in flight: 3 (limit 3); permits free again: 3",
                        "no limit: max in flight: 12, in",
                        "casync.map limit 3: max in flight: 3, in"})
  assert.truthy(has(out, "result 5: timeout"))
  -- 12 x 0.1 s, 3 at a time, the slow one cut at 0.3 s: 0.5 s
  concurrent(num(out, "1 timed out after 0%.3s, in ([%d.]+)s"), 0.5, "semaphore(3)")
  concurrent(num(out, "no limit: max in flight: 12, in ([%d.]+)s"), 0.3, "no limit")
  concurrent(num(out, "casync%.map limit 3: max in flight: 3, in ([%d.]+)s"), 0.5,
             "casync.map limit 3")
end

checks["e002_12_scope_semaphore_limit.lua"] = function(out)
  assert_in_order(out, {
    "scope + semaphore(3): 12 urls, 11 ok, 1 moved on after 0.3s, in",
    "max in flight: 3 (limit 3); permits free again: 3; result 5: moved on",
    'fail_after instead: ok=false, the scope raised "timeout: fail_after: timed out after 0.3 s" after'})
  -- 12 x 0.1 s, 3 at a time, the slow one cut at 0.3 s: 0.5 s
  concurrent(num(out, "moved on after 0%.3s, in ([%d.]+)s"), 0.5, "scope + semaphore(3)")
  -- the slow download, started at 0.1 s, timed out at 0.4 s: the batch ended
  concurrent(num(out, 'timed out after 0%.3 s" after ([%d.]+)s'), 0.4, "fail_after in a scope")
  local finished, cancelled = out:match("finished: (%d+), failed: 1, cancelled: (%d+); " ..
                                        "permits free again: 3\n")
  assert(finished, out)
  -- downloads 9 and 10 end at 0.4 s too, on either side of the timeout;
  -- 11 and 12 never finish
  assert.equals(11, tonumber(finished) + tonumber(cancelled))
  assert(tonumber(cancelled) >= 2, out)
end

checks["e004_9_process_batch.lua"] = function(out)
  local results = "10,20,30,40,50,60,70,80,90,100"
  assert.truthy(out:match("processBatch%(batchSize 3%): max in flight 3, [%d.]+s %-> " ..
                          results .. "\n"))
  assert.truthy(out:match("casync%.map%(limit 3%): +max in flight 3, [%d.]+s %-> " ..
                          results .. "\n"))
  -- batches wait for their slowest item: 150 + 150 + 150 + 100 ms
  concurrent(num(out, "processBatch%(batchSize 3%): max in flight 3, ([%d.]+)s"), 0.55,
             "four batches")
  -- a sliding window of 3 keeps every slot busy: 1000 ms of work / 3, ~350 ms
  concurrent(num(out, "casync%.map%(limit 3%): +max in flight 3, ([%d.]+)s"), 0.35,
             "casync.map limit 3")
end

checks["e004_9_scope_process_batch.lua"] = function(out)
  local results = "10,20,30,40,50,60,70,80,90,100"
  assert.truthy(out:match("scope per batch %(3%): max in flight 3, [%d.]+s %-> " ..
                          results .. "\n"))
  assert.truthy(out:match("scope %+ window of 3: max in flight 3, [%d.]+s %-> " ..
                          results .. "\n"))
  concurrent(num(out, "scope per batch %(3%): max in flight 3, ([%d.]+)s"), 0.55,
             "four batches, a scope each")
  concurrent(num(out, "scope %+ window of 3: max in flight 3, ([%d.]+)s"), 0.35,
             "one scope, semaphore(3)")
end

-- issue 9 item 7: one deadline around a whole fetch, wherever it waits
checks["e009_1_deadline_whole_fetch.lua"] = function(out)
  local cut = "timeout: scope: timed out after 0.5 s; returned: false"
  local phases = {"connect (TLS handshake, the peer is silent):",
                  "request (16 MiB upload, the peer never reads):",
                  "response head (the handler waits 10 s):",
                  "body (a line every 0.2 s, 20 lines):"}
  assert_in_order(out, {"one deadline of 0.5 s around each fetch, no timeout argument:",
                        phases[1], phases[2], phases[3], phases[4],
                        "(the server had sent the head and",
                        "a fast fetch in the same block: ok=true, 200 fast in",
                        "move_on_after, fast: true, 200 in", "move_on_after, slow: false after",
                        "fail_after over /fast, /fast, /slow, /fast: ok=false, 2 answers, " ..
                          "then timeout: fail_after: timed out after 0.5 s after"})
  -- each phase ended by the deadline itself (not an error the client made
  -- of it), at 0.5 s, the http call never returning
  for _, phase in ipairs(phases) do
    local line = out:match(phase:gsub("%p", "%%%0") .. "[^\n]*")
    assert(has(line, cut), ("expected %q in %q"):format(cut, line))
    concurrent(num(line, "ok=false after ([%d.]+)s"), 0.5, phase)
  end
  -- the body had begun: the head and the first line at once, then one
  -- every 0.2 s until the client hung up at 0.5 s
  within(num(out, "the head and (%d+) lines"), 1, 4, "lines of the body sent")
  concurrent(num(out, "200 fast in ([%d.]+)s"), 0, "a fast fetch under the deadline")
  concurrent(num(out, "move_on_after, fast: true, 200 in ([%d.]+)s"), 0, "move_on_after, fast")
  concurrent(num(out, "move_on_after, slow: false after ([%d.]+)s"), 0.5, "move_on_after, slow")
  concurrent(num(out, "timed out after 0%.5 s after ([%d.]+)s"), 0.5, "fail_after, four fetches")
end

-- issue 5: worker threads.  The speed-up checks need two cores.
local function cores()
  local f = io.open("/proc/self/status")
  local list = f and f:read("a"):match("Cpus_allowed_list:%s*([%d,%-]+)")
  if f then f:close() end
  local n = 0
  for a, b in (list or "0"):gmatch("(%d+)%-?(%d*)") do
    n = n + (b ~= "" and tonumber(b) - tonumber(a) + 1 or 1)
  end
  return n
end

checks["e003_2_threads_parallel.lua"] = function(out)
  assert_in_order(out, {"work(n) with n = ", "sequential: work(1), work(2) in",
                        "work(1) on worker", "work(2) on worker",
                        "threads: work(1), work(2) in", "same results: true",
                        "speed-up:"})
  local seq = num(out, "sequential: work%(1%), work%(2%) in ([%d.]+)s")
  local par = num(out, "threads: work%(1%), work%(2%) in ([%d.]+)s")
  within(seq, 0.3, 5, "two work(n) in a row")
  -- two workers, two states, running at the same time
  local w1, s1, e1 = out:match("work%(1%) on worker (%d+): from ([%d.]+)s to ([%d.]+)s")
  local w2, s2, e2 = out:match("work%(2%) on worker (%d+): from ([%d.]+)s to ([%d.]+)s")
  assert(w1 and w2 and w1 ~= w2, "not on two workers:\n" .. out)
  if cores() < 2 then return end
  assert(tonumber(s1) < tonumber(e2) and tonumber(s2) < tonumber(e1),
         "the two calls did not overlap:\n" .. out)
  assert(relaxed or par < 0.8 * seq, ("threads %.2fs vs sequential %.2fs: not parallel"):format(par, seq))
end

checks["e004_5_heartbeat_worker_thread.lua"] = function(out)
  assert_in_order(out, {"on the loop (blocks it): result", "heartbeat gaps (s):",
                        "longest gap:", "on a worker thread: result",
                        "heartbeat gaps (s):", "longest gap:"})
  local loop = section(out, "on the loop", "on a worker thread")
  local thread = section(out, "on a worker thread")
  assert.equals(loop:match("result (%S+)"), thread:match("result (%S+)"))
  local took = num(loop, "in ([%d.]+)s")
  within(took, 0.2, 5, "slowCalculation on the loop")
  -- blocked: the heartbeat stalls as long as the calculation runs
  assert(num(loop, "longest gap: ([%d.]+)s") >= took - 0.01, "no stall:\n" .. out)
  -- on a thread: the heartbeat keeps its 50 ms beat all along
  within(num(thread, "longest gap: ([%d.]+)s"), 0.05, 0.15, "longest gap, work on a thread")
  local beats = select(2, thread:match("gaps %(s%):([^\n]*)"):gsub("%d%.%d%d", ""))
  assert(relaxed or beats >= num(thread, "in ([%d.]+)s") / 0.05, "too few beats:\n" .. out)
end

checks["e002_11_run_in_executor.lua"] = function(out)
  assert_in_order(out, {"Result (thread): Done in",
                        "CPU result (thread): 3.333333e+20 in",
                        "Result (on the loop, blocking it): Done in",
                        "Both (two threads): Done, 3.333333e+20 in"})
  local function ticks(label)
    return num(out, label:gsub("%p", "%%%0") .. ": .- in [%d.]+s; the loop ticked (%d+) times")
  end
  within(num(out, "Result %(thread%): Done in ([%d.]+)s"), 0.3, 0.8, "the blocking call")
  -- the loop kept serving the ticker (20 ms) while the call blocked a thread
  assert(ticks("Result (thread)") >= 5, "the loop did not tick:\n" .. out)
  -- and froze while the same call blocked the loop itself
  assert.equals(0, ticks("Result (on the loop, blocking it)"))
  assert(ticks("Both (two threads)") >= 5, "the loop did not tick:\n" .. out)
  -- two threads: the sleep and the CPU work overlap
  concurrent(num(out, "Both %(two threads%): .- in ([%d.]+)s"), 0.3, "sleep and sum on two threads")
end

checks["e002_10_cpu_and_io_pools.lua"] = function(out)
  assert_in_order(out, {
    "CPU, sequential: 4 x cpu_intensive_task(10^7) = 3.333333e+20 in",
    "CPU, 4 threads:  4 x cpu_intensive_task(10^7) = 3.333333e+20 in",
    "CPU speed-up:"})
  assert.truthy(has(out, "same results: true"))
  local seq = num(out, "CPU, sequential: .- in ([%d.]+)s")
  local par = num(out, "CPU, 4 threads: .- in ([%d.]+)s")
  if cores() >= 2 then
    assert(relaxed or par < 0.8 * seq, ("4 threads %.2fs vs sequential %.2fs: not parallel"):format(par, seq))
  end
  -- the same four calls on four worker processes
  assert_in_order(out, {
    "CPU speed-up:",
    "CPU, 4 processes: 4 x cpu_intensive_task(10^7) = 3.333333e+20 in",
    "CPU speed-up (processes):"})
  assert.truthy(out:match("CPU speed%-up %(processes%): [%d.]+x; same results: true"))
  local pro = num(out, "CPU, 4 processes: .- in ([%d.]+)s")
  if cores() >= 2 then
    assert(relaxed or pro < 0.8 * seq, ("4 processes %.2fs vs sequential %.2fs: not parallel"):format(pro, seq))
  end
  if has(out, "I/O: skipped") then return end
  assert_in_order(out, {"I/O, one request on a thread: status 200 in",
                        "I/O, 10 threads: 10 requests, statuses " ..
                        ("200,"):rep(9) .. "200 in",
                        "the loop served 11 requests meanwhile"})
  -- ten blocking requests of 0.1 s on ten threads overlap
  within(num(out, "I/O, 10 threads: .- in ([%d.]+)s"), 0.1, 0.6, "ten requests on ten threads")
  assert(num(out, "at most (%d+) at once") >= 5, "the requests did not overlap:\n" .. out)
end

-- issue 5: processes, files, the watchdog

checks["e001_2_which_workload_benefits.lua"] = function(out)
  assert_in_order(out, {"(a) heavy math on a big array (CPU-bound)",
                        "one loop:", "four tasks:", "tasks / one loop:",
                        "four threads:", "threads / one loop:",
                        "(c) read a file, transform it, write a new one",
                        "whole file: 4888895 bytes in",
                        "read and write at once (reader task -> channel -> writer task):",
                        "same output: true; first line: LINE 1 OF THE INPUT"})
  assert.equals(out:match("one loop: +sum of squares (%S+)"),
                out:match("four tasks: +sum of squares (%S+)"))
  -- four tasks on one thread: no gain (a parallel run would be ~0.25-0.5)
  within(num(out, "tasks / one loop: ([%d.]+)"), 0.6, 2.5, "four tasks vs one loop")
  -- the same quarters on worker threads: the cores work at once
  assert.equals(out:match("four tasks: +sum of squares (%S+)"),
                out:match("four threads: +sum of squares (%S+)"))
  local ratio = num(out, "threads / one loop: ([%d.]+)")
  if cores() >= 2 then
    assert(relaxed or ratio < 0.85,
           ("four threads took %.2f of one loop's time: not parallel"):format(ratio))
  end
  assert.truthy(has(out, "the loop ran another task meanwhile: true"))
end

checks["e002_13_pitfalls.lua"] = function(out, file)
  assert_in_order(out, {"1. Blocking the event loop",
                        "watchdog: task #", "bad_example -> Done in",
                        "good_example -> Done in",
                        "2. Forgetting to await",
                        "bad_await returned; result there: false",
                        "good_await returned; result there: true",
                        "3. Sequential when concurrent is possible",
                        "bad_sequential: data from url1, data from url2, data from url3 in",
                        "good_concurrent: data from url1, data from url2, data from url3 in"})
  -- the watchdog reported the blocked task, once, by name, with where it was
  local _, reports = out:gsub("has run %d+ ms without suspending", "")
  assert.equals(1, reports)
  assert.truthy(out:match("watchdog: task #%d+ 'bad_example' has run %d+ ms without suspending"))
  local line = tonumber(out:match("watchdog:   at examples/e002_13_pitfalls%.lua:(%d+):"))
  local call = line_of(file, 'os.execute("sleep 0.2")')
  assert(line and line >= call and line <= call + 1,
         "the report does not point into bad_example:\n" .. out)
  -- blocked: the heartbeat stopped; not blocked: it kept its 20 ms beat
  local bad = section(out, "bad_example ->", "good_example ->")
  local good = section(out, "good_example ->", "2. Forgetting")
  assert(num(bad, "longest heartbeat gap: ([%d.]+)s") >= 0.18, "no stall:\n" .. out)
  within(num(good, "longest heartbeat gap: ([%d.]+)s"), 0.01, 0.12, "heartbeat, casync.sleep")
  sequential(num(out, "bad_sequential: .- in ([%d.]+)s"), 0.3, "bad_sequential")
  concurrent(num(out, "good_concurrent: .- in ([%d.]+)s"), 0.1, "good_concurrent")
end

checks["e003_3_process_pool_map.lua"] = function(out)
  local mine = out:match("this script: pid (%d+)")
  assert(mine, out)
  local pids = {}
  for n = 1, 4 do
    local pid = out:match(("work%%(%d%%) = %d in process (%%d+), from"):format(n, n * n))
    assert(pid and pid ~= mine, "work(" .. n .. ") not in a worker process:\n" .. out)
    pids[pid] = true
  end
  assert_in_order(out, {"work(1)", "work(2)", "work(3)", "work(4)",
                        "results in order: 1, 4, 9, 16",
                        "4 processes, none of them this one: true",
                        "all four running at once: true; map took"})
end

checks["e003_4_blocking_vs_nonblocking.lua"] = function(out)
  assert_in_order(out, {"blocking sleep:", "busy loop:", "casync.sleep:",
                        "a blocking wait freezes every task; a casync wait does not"})
  for _, name in ipairs({"blocking sleep", "busy loop"}) do
    local l = out:match(name:gsub("%p", "%%%0") .. ":[^\n]*")
    sequential(num(l, "waits in ([%d.]+)s"), 0.4, name)
    assert(num(l, "longest gap ([%d.]+)s") >= 0.35, name .. ": the ticker was not frozen:\n" .. out)
  end
  local l = out:match("casync%.sleep:[^\n]*")
  concurrent(num(l, "waits in ([%d.]+)s"), 0.2, "casync.sleep")
  assert(num(l, "ticker: +(%d+) ticks") >= 10, "the ticker did not tick:\n" .. out)
  within(num(l, "longest gap ([%d.]+)s"), 0.01, 0.1, "ticker gap, casync.sleep")
end

checks["e004_1_multiprocessing_pool.lua"] = function(out)
  local results = "3.333333e+20 2.666666e+21 9.000000e+21 2.133333e+22"
  assert_in_order(out, {"sequential (1 process):  " .. results .. " in",
                        "parallel (4 processes):  " .. results .. " in",
                        "same results: true", "speed-up:",
                        "the loop kept beating meanwhile: true"})
  local seq = num(out, "sequential %(1 process%): .- in ([%d.]+)s")
  local par = num(out, "parallel %(4 processes%): .- in ([%d.]+)s")
  within(seq, 0.3, 20, "four calls in a row")
  if cores() >= 2 then
    assert(relaxed or par < 0.8 * seq, ("4 processes %.2fs vs 1 process %.2fs: not parallel"):format(par, seq))
  end
end

---------------------------------------------------------------------------
-- issue 4: HTTP, each against a server on loopback that the script starts

checks["e002_7_fetch_patterns.lua"] = function(out)
  assert_in_order(out, {
    "-- fetchData (try/catch)",
    "fetchData: User 1 (id 1)",
    "Fetch failed: HTTP 500: Internal Server Error (broken)",
    "fetchData(/broken) threw: HTTP 500: Internal Server Error (ok=false)",
    "fetchData(/text) threw: json: invalid JSON",
    "-- fetchAll (Promise.all)",
    "fetchAll: User 3, User 1, User 2 in",
    "fetchAll with a 404 rejects: HTTP 404: Not Found after",
    "-- fetchWithSettled (Promise.allSettled)",
    "URL 1: fulfilled, User 2",
    "URL 2: rejected, HTTP 404: Not Found",
    "URL 3: rejected, HTTP 500: Internal Server Error",
    "URL 4: fulfilled, User 3",
    "fetchWithSettled: every result in",
    "-- fetchWithTimeout (Promise.race + AbortController)",
    "fetchWithTimeout(users/2, 500ms): User 2 in",
    "fetchWithTimeout(slow, 200ms): aborted after",
    "wait_for(slow, 200ms): timeout after",
  })
  -- Promise.all: concurrent, the slowest (150 ms); a rejection does not
  -- wait for the others (users/4 takes 200 ms)
  concurrent(num(out, "fetchAll: [^\n]* in (%d+)ms") / 1000, 0.15, "Promise.all")
  within(num(out, "rejects: [^\n]* after (%d+)ms"), 0, 150, "Promise.all rejecting (ms)")
  concurrent(num(out, "fetchWithSettled: every result in (%d+)ms") / 1000, 0.15, "allSettled")
  concurrent(num(out, "User 2 in (%d+)ms") / 1000, 0.1, "fetch under a timeout")
  -- the abort: the fetch was cancelled at 200 ms, with the abort's reason
  concurrent(num(out, "aborted after (%d+)ms") / 1000, 0.2, "abort")
  assert.truthy(has(out, "aborted after") and
                out:match("aborted after %d+ms: AbortError: the operation was aborted %(kind cancelled%)"))
  concurrent(num(out, "wait_for%(slow, 200ms%): timeout after (%d+)ms") / 1000, 0.2, "wait_for")
  -- aborted requests closed their connections: only the good ones are kept
  within(num(out, "idle connections kept for reuse: (%d+)"), 0, 8, "idle connections")
end

checks["e004_8_robust_api_call.lua"] = function(out)
  assert.truthy(out:match("ok: +{ success: true, data: { id: 7, name: 'Ada Lovelace' } } in %d+ms"))
  assert.truthy(out:match("error: +{ success: false, error: 'HTTP 503: Service Unavailable' } in %d+ms"))
  assert.truthy(out:match("timeout: { success: false, error: 'Request timed out' } in %d+ms"))
  concurrent(num(out, "timeout: [^\n]* in (%d+)ms") / 1000, 0.3, "timeout of 300 ms")
  assert.truthy(has(out, "together: success true, Ada Lovelace / false, HTTP 503: " ..
                         "Service Unavailable / false, Request timed out in"))
  concurrent(num(out, "together: [^\n]* in (%d+)ms") / 1000, 0.3, "three at once")
  concurrent(num(out, "kind timeout, after (%d+)ms") / 1000, 0.3, "http.get's own timeout")
end

checks["e011_1_udp_echo.lua"] = function(out)
  assert_lines(out, {
    "sent hello     got HELLO",
    "sent datagram  got DATAGRAM",
    "sent world     got WORLD",
    'recv(6) of a 22-byte datagram: "A RATH", truncated: true',
    "nobody answers any more: nil, timeout: recv: timed out after 0.1 s",
  })
end

checks["e011_2_tls_echo.lua"] = function(out)
  assert_lines(out, {
    "made a private CA and a certificate for localhost",
    "connected: TLSv1.3, certificate of /CN=localhost verified: true",
    "echo: hello over TLS",
    "echo: second line",
    "without the CA: nil, tls: connect: certificate verify failed: unknown CA " ..
      "(unable to get local issuer certificate)",
  })
end

checks["e011_3_websocket_chat.lua"] = function(out)
  -- the script shows the clients' screens in a fixed order: the whole
  -- output is the same on every run
  local said = {"alice: hi bob", "bob: hi alice! how is the async chapter going?",
                "alice: every wait is a suspension point; got to go"}
  assert_lines(out, {
    "server: alice joined (1 online)",
    "alice sees  * alice joined",
    "server: bob joined (2 online)",
    "alice sees  * bob joined",
    "bob   sees  * bob joined",
    "alice says  hi bob",
    "alice sees  " .. said[1],
    "bob   sees  " .. said[1],
    "bob   says  hi alice! how is the async chapter going?",
    "alice sees  " .. said[2],
    "bob   sees  " .. said[2],
    "alice says  every wait is a suspension point; got to go",
    "alice sees  " .. said[3],
    "bob   sees  " .. said[3],
    "bob   leaves",
    "server: bob left, closed 1000 bye (1 online)",
    "alice sees  * bob left",
    "alice leaves",
    "server: alice left, closed 1000 bye (0 online)",
    "chat over: 2 connections; closed on the client side: alice true, bob true",
  })
  assert.equals(20, #lines_of(out))
end

checks["e004_11_aiohttp_session.lua"] = function(out)
  assert_lines(out, {
    "users: 2 (Ada, Grace)",
    "posts: 3 (Lua)",
    "comments: 1 (Nice)",
    "users again: Ada, Grace",
  })
  -- gather of 150, 100, 200 ms, then one more of 150 ms on a kept connection
  concurrent(num(out, "then one more: (%d+)ms") / 1000, 0.35, "three at once, then one")
  assert.truthy(has(out, "server: 4 requests on 3 connections"))
end

checks["e001_2_b_server_1000_requests.lua"] = function(out)
  local n = tonumber(out:match("(%d+) requests instead of 1,000") or "1000")
  assert.truthy(has(out, ("%d requests, each waiting 0.5 s on the database"):format(n)))
  assert.truthy(has(out, ("answered correctly: %d; at most %d in flight"):format(n, n)))
  -- all of them wait at once: about one wait (plus the connections), not n
  within(num(out, "total: ([%d.]+)s with one thread"), 0.5, 2.5, "1,000 requests of 0.5 s")
  assert.truthy(has(out, ("server: %d connections, %d requests"):format(n, n)))
end

checks["e000_1_http_fetch_data.lua"] = function(out)
  assert_lines(out, {
    "Fetching data for user1...",
    "Fetching data for user2...",
    "Fetching data for user3...",
    "Data for user2 received!",
    "Data for user1 received!",
    "Data for user3 received!",
    "All results: ['user1 data', 'user2 data', 'user3 data']",
  })
  concurrent(num(out, "Total: ([%d.]+)s"), 3, "gather of three GETs of 2 s, 1 s, 3 s")
end

-- issue 11 item 7: E000.1 and E004.11 over HTTPS, with a private CA the
-- script makes; the client trusts only that CA
local UNTRUSTED = 'without the private CA: nil, kind "tls", code UNKNOWN_CA: GET https://'
-- the rest of that line: the request, then why the handshake failed
local function untrusted(out, path)
  assert.truthy(out:match('code UNKNOWN_CA: GET https://127%.0%.0%.1:%d+' .. path:gsub("%p", "%%%0") ..
                          ": connect: certificate verify failed"), out)
end

checks["e000_1_https_fetch_data.lua"] = function(out)
  assert_lines(out, {
    "made a private CA and a certificate for 127.0.0.1 and localhost",
    "Fetching data for user1...",
    "Fetching data for user2...",
    "Fetching data for user3...",
    "Data for user2 received!",
    "Data for user1 received!",
    "Data for user3 received!",
    "All results: ['user1 data', 'user2 data', 'user3 data']",
  })
  assert.truthy(out:match("Total: [%d.]+s %([^)]*%) over https://127%.0%.0%.1:%d+/\n"), out)
  concurrent(num(out, "Total: ([%d.]+)s"), 3, "gather of three HTTPS GETs of 2 s, 1 s, 3 s")
  assert_in_order(out, {"Total:", UNTRUSTED})
  untrusted(out, "/data/user2")
end

checks["e004_11_https_session.lua"] = function(out)
  assert_lines(out, {
    "made a private CA and a certificate for 127.0.0.1 and localhost",
    "users: 2 (Ada, Grace)",
    "posts: 3 (Lua)",
    "comments: 1 (Nice)",
    "users again: Ada, Grace",
  })
  -- gather of 150, 100, 200 ms, then one more of 150 ms on a kept connection
  concurrent(num(out, "then one more: (%d+)ms") / 1000, 0.35, "three at once, then one")
  assert.truthy(out:match("server: 4 requests on 3 connections, over https://127%.0%.0%.1:%d+/\n"),
                out)
  assert_in_order(out, {"server: 4 requests", UNTRUSTED})
  untrusted(out, "/api/users")
end

checks["e004_4_http_fetch_users.lua"] = function(out)
  assert_in_order(out, {"Sequential:", "Concurrent:",
                        "users: User1 User2 User3 / User1 User2 User3"})
  sequential(num(out, "Sequential: (%d+)ms") / 1000, 0.6, "three GETs in a row")
  concurrent(num(out, "Concurrent: (%d+)ms") / 1000, 0.2, "three GETs gathered")
  assert.truthy(has(out, "server: 6 requests on 3 connections (keep-alive)"))
end

-- The chart rows of a timeline (lines that start, after indentation, with
-- "#id "), cut to `from`..`to` (characters, UTF-8) when given.
local function chart_rows(s, from, to)
  local rows = {}
  for line in s:gmatch("[^\n]+") do
    if from then
      local a = utf8.offset(line, from)
      local b = utf8.offset(line, to + 1)
      line = a and line:sub(a, b and b - 1 or -1) or ""
    end
    if line:match("^%s*#%d+ ") then rows[#rows + 1] = line end
  end
  return rows
end

-- The columns (1-based, in characters) where a row's first and last
-- glyph other than a blank stand, after its label (`label` characters).
local function extent(row, label)
  local first, last, i = nil, nil, 0
  for _, c in utf8.codes(row) do
    i = i + 1
    if i > label and c ~= 32 then
      first = first or i
      last = i
    end
  end
  return first, last
end

checks["e001_5_see_it_sequential_vs_concurrent.lua"] = function(out)
  assert_in_order(out, {"Sequential: User1, User2", "Concurrent: User1, User2"})
  sequential(num(out, "\nSequential: ([%d.]+) s "), 2, "two fetches awaited in turn")
  concurrent(num(out, "Concurrent: ([%d.]+) s\n"), 1, "two fetches gathered")
  -- the two charts side by side (39 characters each, 2 apart), one scale
  local left, right = chart_rows(out, 1, 39), chart_rows(out, 42, 80)
  assert.equal(3, #left, out)
  assert.equal(3, #right, out)
  assert.truthy(left[2]:find("#%d+ 'fetch_user%(1%)'"))
  assert.truthy(left[3]:find("#%d+ 'fetch_user%(2%)'"))
  assert.truthy(right[2]:find("#%d+ 'fetch_user%(1%)'"))
  assert.truthy(right[3]:find("#%d+ 'fetch_user%(2%)'"))
  -- sequential: fetch 2 starts where fetch 1 ends; concurrent: together,
  -- and over in half the columns
  local s1, e1 = extent(left[2], 21)
  local s2, e2 = extent(left[3], 21)
  local c1, d1 = extent(right[2], 21)
  local c2, d2 = extent(right[3], 21)
  assert(math.abs(s2 - e1) <= 1 and e2 > e1, "sequential bars should follow each other:\n" .. out)
  assert(c1 == c2 and d1 == d2, "concurrent bars should lie one above the other:\n" .. out)
  assert(math.abs((d1 - c1) - (e1 - s1)) <= 1, "one fetch should be as long in both:\n" .. out)
  assert(math.abs((e2 - s1) - 2 * (d1 - c1)) <= 2, "sequential should take twice as long:\n" .. out)
  -- the figures: one wait at a time, then two
  assert.near(1.0, num(out, "Sequential: wall [%d.]+ s, waits [%d.]+ s, ([%d.]+)x concurrency"), 0.05)
  assert.near(2.0, num(out, "Concurrent: wall [%d.]+ s, waits [%d.]+ s, ([%d.]+)x concurrency"), 0.1)
  assert.truthy(out:find("1.0× concurrency", 1, true))
  assert.truthy(out:find("2.0× concurrency", 1, true))
end

-- Examples run a second time with `casync --timeline`: the chart on
-- stderr, checked for its rows and its concurrency figure.
local timeline_checks = {}

-- rows: how many rows (the main task's included), figure: the expected
-- concurrency, waits: the expected sum of waits (seconds)
local function timeline_shape(err, rows, figure, waits)
  local r = chart_rows(err)
  assert(#r == rows, ("expected %d rows in the timeline, got %d:\n%s"):format(rows, #r, err))
  assert.matches("^#1 main ", r[1])
  local wall = num(err, "\nwall ([%d.]+) s, sum of waits")
  local sum = num(err, "sum of waits ([%d.]+) s:")
  local x = num(err, "s: ([%d.]+)× concurrency\n$")
  -- a sleep never ends early, and may end late on a loaded machine
  assert(sum >= waits and (relaxed or sum <= waits * 1.1 + 0.05),
         ("sum of waits %s, expected %s"):format(sum, waits))
  if not relaxed then
    assert(math.abs(x - figure) <= 0.1, ("concurrency %s, expected about %s:\n%s"):format(x, figure, err))
  end
  assert(math.abs(x - sum / wall) <= 0.06, "the figure is the sum of waits over the wall time")
  return r
end

timeline_checks["e000_1_gather_fetch_data.lua"] = function(err)
  -- main, and the three fetches of 2, 1 and 3 s: 6 s of sleeps in 3 s
  local r = timeline_shape(err, 4, 2.0, 6)
  local _, e2 = extent(r[2], 20)
  local _, e3 = extent(r[3], 20)
  local _, e4 = extent(r[4], 20)
  assert(e3 < e2 and e2 < e4, "the fetches should end 2, 1, 3:\n" .. err)
end

timeline_checks["e002_1_sequential_vs_gather.lua"] = function(err)
  -- 3 s of sleeps in the main task, then 3 s in three gathered tasks, in 4 s
  timeline_shape(err, 4, 1.5, 6)
end

timeline_checks["e004_10_microservices.lua"] = function(err)
  -- 0.45 s in a row, 0.45 s at once, 0.15 s then 0.3 s at once: 1.35 s in 0.9 s
  timeline_shape(err, 6, 1.5, 1.35)
end

---------------------------------------------------------------------------

describe("examples", function()
  local files = list_examples()
  local runs = {}     -- by file (or "file flags"): the casync runner's runs
  local lua_runs = {} -- by file: the lua5.4 runs
  local lua_started = false

  -- lua5.4 finds this checkout's casync through LUA_PATH and LUA_CPATH.
  local LUA_ENV = ("LUA_PATH=%s LUA_CPATH=%s"):format(
    shell_quote(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;;"),
    shell_quote(helper.build .. "/lib/?.so;;"))

  -- Runs started together (all at once, or an EXCLUSIVE one alone) share
  -- one window in which the CPU other processes use is measured.
  local batch
  local function new_batch() batch = {meter = helper.others_cpu(), t0 = now()} end

  -- starts file (with the runner's flags, when given; its run is then
  -- runs[file .. " " .. flags]), or under lua5.4 (lua_runs[file])
  local function start(file, flags, under_lua)
    local errfile = os.tmpname()
    -- The runner links its sanitizers itself; an LD_PRELOAD inherited from
    -- the busted run would reach the programs examples start (curl under a
    -- preloaded ASan can deadlock in fork) and is dropped.
    local cmd = ("env -u LD_PRELOAD COLUMNS=100 %s timeout %d %s %s%s 2>%s"):format(
      under_lua and LUA_ENV or "", TIME_LIMIT,
      under_lua and "lua5.4" or shell_quote(RUNNER), flags and flags .. " " or "",
      shell_quote(DIR .. "/" .. file), shell_quote(errfile))
    local r = {pipe = assert(io.popen(cmd, "r")), errfile = errfile, batch = batch}
    if under_lua then lua_runs[file] = r
    else runs[flags and file .. " " .. flags or file] = r end
  end

  local function finish(r)
    if not r.out then
      r.out = r.pipe:read("a")
      local _, how, code = r.pipe:close()
      r.how, r.code = how, code
      r.err = read_file(r.errfile)
      os.remove(r.errfile)
    end
    return r
  end

  -- Finishes every run of `set`, then notes for each how much CPU other
  -- processes used in its batch's window (r.others, in r.wall seconds), and
  -- whether that was significant: more than a quarter of a core on average
  -- (r.busy).  A run not yet reaped counts as another process, so a batch
  -- is measured once all of it is.
  local function finish_all(set)
    for _, r in pairs(set) do finish(r) end
    for _, r in pairs(set) do
      local b = r.batch
      if not b.wall then b.others, b.wall = b.meter(), now() - b.t0 end
      r.others, r.wall, r.busy = b.others, b.wall, b.others > 0.25 * b.wall
    end
  end

  -- Start every example at once (but the EXCLUSIVE ones); each `it`
  -- collects its own.
  setup(function()
    local f = io.open(RUNNER, "rb")
    assert(f, ("runner %s not found (build first, or set CASYNC_BUILD)"):format(RUNNER))
    f:close()
    new_batch()
    for _, file in ipairs(files) do
      if not EXCLUSIVE[file] and (not ONLY or ONLY == file) then start(file) end
      if timeline_checks[file] and (not ONLY or ONLY == file) then
        start(file, "--timeline")
      end
    end
  end)

  local function collect(file)
    if not runs[file] then -- exclusive: alone, once the others have ended
      finish_all(runs)
      new_batch()
      start(file)
    end
    finish_all(runs) -- the batch started together: no time lost
    return runs[file]
  end

  -- The lua5.4 runs: all at once (but the EXCLUSIVE ones), once every
  -- casync run has ended; an EXCLUSIVE one alone, after the others.
  local function collect_lua(file)
    if not lua_started then
      lua_started = true
      finish_all(runs)
      new_batch()
      for _, f in ipairs(files) do
        if not EXCLUSIVE[f] and (not ONLY or ONLY == f) then start(f, nil, true) end
      end
    end
    if not lua_runs[file] then
      finish_all(lua_runs)
      new_batch()
      start(file, nil, true)
    end
    finish_all(lua_runs)
    return lua_runs[file]
  end

  teardown(function()
    for _, r in pairs(runs) do finish(r) end
    for _, r in pairs(lua_runs) do finish(r) end
  end)

  local describe_index = ONLY and ONLY ~= "none" and function() end or
                         function(body) body() end
  describe_index(function()
  it("has an example for every id the core issue asks for", function()
    local have = {}
    for _, file in ipairs(files) do have[id_of(file) or file] = file end
    for _, id in ipairs(REQUIRED_IDS) do
      assert(have[id], ("no example file for %s in %s/"):format(id, DIR))
    end
  end)

  it("has a check for every example, and an example for every check", function()
    local seen = {}
    for _, file in ipairs(files) do
      assert(checks[file], ("%s/%s has no check in spec/examples_spec.lua"):format(DIR, file))
      seen[file] = true
    end
    for file in pairs(checks) do
      assert(seen[file], ("check for %s, but no such file in %s/"):format(file, DIR))
    end
  end)

  it("indexes every example in examples/README.md", function()
    local readme = read_file(DIR .. "/README.md")
    for _, file in ipairs(files) do
      assert(has(readme, file), ("examples/README.md does not mention %s"):format(file))
      assert(has(readme, id_of(file)), ("examples/README.md does not mention %s"):format(id_of(file)))
    end
  end)

  it("ends every example with casync.run(main), as the articles end with asyncio.run(main())", function()
    for _, file in ipairs(files) do
      local last = read_file(DIR .. "/" .. file):match("([^\n]*)\n*$")
      assert(last:match("^casync%.run%(main%)"),
        ("%s/%s: the last line should be casync.run(main), not %q"):format(DIR, file, last))
    end
  end)
  end)

  -- check(text, file) on run r.  When it fails and other processes kept
  -- the machine busy while r ran (r.busy), it runs again relaxed: order,
  -- results and lower bounds still hold, upper bounds and speed-ups are not
  -- checked, as under the sanitizers.  last: false when the caller will
  -- rather run the example again.  Returns pcall's results.
  local function checked(check, text, file, r, last)
    local ok, err = pcall(check, text, file)
    if ok or relaxed or not (r.busy and last) then return ok, err end
    relaxed = true
    local ok2, err2 = pcall(check, text, file)
    relaxed = SANITIZED
    if not ok2 then return ok2, err2 end
    io.stderr:write(("\n[examples_spec] %s: upper bounds relaxed, other processes " ..
                     "used %.1f s of CPU in its %.1f s; strictly: %s\n")
                    :format(file, r.others, r.wall, tostring(err)))
    return true
  end

  -- r: a finished run; exit 0, nothing on stderr, and the example's check
  local function check_run(file, r, last)
    assert(r.how == "exit" and r.code == 0, ("%s exited with %s %s\nstdout:\n%s\nstderr:\n%s")
      :format(file, tostring(r.how), tostring(r.code), r.out, r.err))
    -- nothing is lost silently: no unobserved-failure report, no warning
    assert(r.err == "", ("%s wrote to stderr:\n%s"):format(file, r.err))
    local check = checks[file]
    assert(check, ("%s has no check"):format(file))
    local ok, err = checked(check, r.out, file, r, last)
    if not ok then error(err, 0) end
  end

  for _, file in ipairs(files) do
    if not ONLY or ONLY == file then it(file, function()
      -- the header names the article and the example id
      local first = read_file(DIR .. "/" .. file):match("^[^\n]*")
      assert(first:match("^%-%- Seed 00%d ") or first:match("^%-%- Issue %d+ "),
             file .. ": first line should name the seed article (or the issue)")
      local header = read_file(DIR .. "/" .. file):match("^(.-)\nlocal ") or ""
      assert(has(header, "example " .. id_of(file)), file .. ": header should name " .. id_of(file))

      local r = collect(file)
      -- the speed-up an EXCLUSIVE example measures needs free cores, which
      -- another program on the machine (a build, another test run) may take
      -- for a while: up to five runs, 3 s apart
      local tries = EXCLUSIVE[file] and 5 or 1
      for try = 1, tries do
        if try > 1 then
          os.execute("sleep 3")
          runs[file] = nil
          r = collect(file)
        end
        local ok, err = pcall(check_run, file, r, try == tries)
        if ok then break end
        if try == tries then error(err, 0) end
      end
    end) end
  end

  -- The same script under plain lua5.4 (casync.run(main) is the whole
  -- difference): all at once after the casync runs, the EXCLUSIVE ones
  -- alone after those.  Not under the sanitizers, whose runtime lua5.4
  -- does not load first (the casync runs cover the sanitized build).
  for _, file in ipairs(files) do
    if not ONLY or ONLY == file then it(file .. " under lua5.4", function()
      if SANITIZED then
        pending("lua5.4 cannot load a sanitized casync.core without LD_PRELOAD")
        return
      end
      local tries = EXCLUSIVE[file] and 5 or 1
      for try = 1, tries do
        if try > 1 then
          os.execute("sleep 3")
          lua_runs[file] = nil
        end
        local ok, err = pcall(check_run, file, collect_lua(file), try == tries)
        if ok then break end
        if try == tries then error(err, 0) end
      end
    end) end
  end

  for file, check in pairs(timeline_checks) do
    if not ONLY or ONLY == file then it(file .. " with --timeline", function()
      -- a run the machine slowed (a start-up that took 60 ms among the
      -- other examples' runs) lowers the figure: up to three runs, 3 s apart
      for try = 1, 3 do
        if try > 1 then
          os.execute("sleep 3")
          runs[file .. " --timeline"] = nil
        end
        local r = collect(file .. " --timeline")
        assert(r.how == "exit" and r.code == 0, ("%s exited with %s %s\nstderr:\n%s")
          :format(file, tostring(r.how), tostring(r.code), r.err))
        -- the same output as without, and the chart after it on stderr
        assert(#r.out > 0)
        local ok, err = checked(check, r.err, file, r, try == 3)
        if ok then break end
        if try == 3 then error(err, 0) end
      end
    end) end
  end
end)
