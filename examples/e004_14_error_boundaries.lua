-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "Debugging Async Code", example E004.14: error boundaries
-- (safeAsyncOperation: catch, log with the stack trace, re-throw) and
-- timing and logging (monitoredOperation: console.time + try/finally).
--
-- What it shows in casync:
--  * An error keeps its whole traceback across suspensions: riskyOperation
--    waits twice before parseResponse fails, and the traceback still runs
--    parseResponse <- riskyOperation <- safeAsyncOperation, because a task is
--    a stackful coroutine (no async stack stitching needed).
--  * Across a task boundary, task:wait() re-raises the error value unchanged
--    (the very same table), and task:traceback() tells where the task failed
--    and where it was spawned.
--  * try/finally is a to-be-closed variable: monitoredOperation's timer is
--    printed when the operation succeeds, fails, or is cancelled by a timeout.
-- console.error goes to stdout here so the whole story reads in one stream.
local casync = require "casync"

local JsonError = {__tostring = function(e) return "JsonError: " .. e.message end}
local raised -- the error value riskyOperation raised, to compare identities

local function parseResponse(body)
  if body:sub(1, 1) ~= "{" then
    raised = setmetatable({message = "unexpected token '<' at position 0"}, JsonError)
    error(raised)
  end
  return {body = body}
end

local function riskyOperation()
  casync.sleep(0.03)                                  -- the request
  local body = "<html>502 Bad Gateway</html>"
  casync.sleep(0.02)                                  -- reading the body
  local data = parseResponse(body)                    -- not a tail call, so the
  return data                                         -- frame stays in the trace
end

-- Use Proper Error Boundaries
local function safeAsyncOperation()
  local trace
  local ok, result = xpcall(riskyOperation, function(err)
    trace = debug.traceback(tostring(err), 2) -- Log stack trace, context, etc.
    return err
  end)
  if ok then return result end
  print("Operation failed:", tostring(result))
  print(trace)
  error(result, 0) -- Re-throw if caller should handle it
end

local function main()
  print("== error boundary inside one task")
  local ok, err = pcall(safeAsyncOperation)
  print(("re-thrown to the caller: ok=%s, same value=%s"):format(tostring(ok),
                                                                tostring(rawequal(err, raised))))

  print("== across a task boundary")
  local task = casync.spawn({name = "riskyOperation"}, riskyOperation)
  ok, err = pcall(task.wait, task)
  print(("task:wait() raised: %s (same value=%s)"):format(tostring(err),
                                                          tostring(rawequal(err, raised))))
  print(task:traceback())

  -- Add Timing and Logging
  local console = {}
  function console.time(label)
    -- returns a to-be-closed timer: closing it is console.timeEnd(label)
    return setmetatable({label = label, t0 = casync.now()}, {
      __close = function(t)
        print(("%s: %.3fms"):format(t.label, (casync.now() - t.t0) * 1000))
      end,
    })
  end

  local function monitoredOperation(operationName, asyncFn)
    local timer <close> = console.time(operationName) -- finally: console.timeEnd
    print(("Starting %s"):format(operationName))

    local result = asyncFn()
    print(("Completed %s"):format(operationName))
    return result
  end

  print("== monitoredOperation")
  local user = monitoredOperation("fetchUser", function()
    casync.sleep(0.1)
    return {name = "Ada"}
  end)
  print(("result: %s"):format(user.name))

  ok, err = pcall(monitoredOperation, "riskyOperation", riskyOperation)
  print(("failed: %s"):format(tostring(err)))

  ok, err = pcall(casync.wait_for, function()
    return monitoredOperation("slowReport", function() casync.sleep(5) end)
  end, 0.1)
  print(("gave up: %s"):format(type(err) == "table" and err.kind or tostring(err)))
end

casync.run(main)
