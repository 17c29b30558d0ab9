-- Seed 002 "Async Programming: Complete Guide", section "Async Context
-- Managers", example E002.2: AsyncDatabaseConnection, whose connect takes
-- 0.1 s and whose disconnect takes 0.05 s.
--
-- Python's `async with X() as db:` is Lua 5.4's to-be-closed variable,
-- `local db <close> = X()`: __aenter__ is the constructor, __aexit__ is the
-- __close metamethod.  The __close here suspends (casync.sleep), and it runs
-- when the block ends normally, when it ends by an error, and when the task
-- is cancelled (cancellation is an error raised at the suspension point).
-- Like `return False` in __aexit__, __close never swallows the error.
local casync = require "casync"

local AsyncDatabaseConnection = {}
AsyncDatabaseConnection.__index = AsyncDatabaseConnection

-- __aenter__: connect to database.
function AsyncDatabaseConnection.new()
  casync.sleep(0.1) -- simulate connection
  print("Connected to database")
  return setmetatable({rows = {}}, AsyncDatabaseConnection)
end

-- __aexit__: close database connection (err is the error in flight, if any).
function AsyncDatabaseConnection:__close(err)
  local t0 = casync.now()
  casync.sleep(0.05) -- simulate cleanup
  print(("Disconnected from database (cleanup took %.2fs%s)"):format(
    casync.now() - t0, err and ", closing on error" or ""))
end

function AsyncDatabaseConnection:execute(sql)
  casync.sleep(0.01)
  local value = sql:match("VALUES %('(.-)'%)")
  if value then self.rows[#self.rows + 1] = value end
end

function AsyncDatabaseConnection:query(sql)
  casync.sleep(0.01)
  if sql:find("FROM missing_table", 1, true) then
    error("no such table: missing_table", 0)
  end
  if sql:find("FROM logs", 1, true) then return self.rows end
  return {"alice", "bob"}
end

-- the article's main()
local function article_main()
  local conn <close> = AsyncDatabaseConnection.new()
  -- Perform database operations
  local result = conn:query("SELECT * FROM users")
  print(("Query result: %s"):format(table.concat(result, ", ")))
end

-- Using async context manager
local function database_example()
  local db <close> = AsyncDatabaseConnection.new()
  db:execute("INSERT INTO logs VALUES ('test')")
  local results = db:query("SELECT * FROM logs")
  print(("Logs: %s"):format(table.concat(results, ", ")))
end

-- main: the article's main(), its database_example(), then the block left
-- by an error and by a cancellation
local function main()
  print("-- main")
  article_main()

  print("-- database_example")
  database_example()

  print("-- an error inside the block")
  local ok, err = pcall(function()
    local db <close> = AsyncDatabaseConnection.new()
    db:query("SELECT * FROM missing_table")
    print("not reached")
  end)
  print(("caught: %s (ok=%s)"):format(tostring(err), tostring(ok)))

  print("-- the task is cancelled inside the block")
  local task = casync.spawn(function()
    local db <close> = AsyncDatabaseConnection.new()
    casync.sleep(10) -- a long query; cancelled long before it ends
    print("not reached")
  end)
  casync.sleep(0.15) -- connected by now, waiting in the long query
  task:cancel("shutting down")
  local wok, werr = pcall(task.wait, task)
  print(("task cancelled: %s, error kind: %s (ok=%s)"):format(
    tostring(task:cancelled()), type(werr) == "table" and werr.kind or tostring(werr),
    tostring(wok)))
end

casync.run(main) -- asyncio.run(main())
