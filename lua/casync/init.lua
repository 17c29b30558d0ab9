-- casync: the Lua front end.  The scheduler, timers, combinators and wait
-- lists are C (casync.core); this module re-exports them and adds the
-- conveniences written in Lua.
local core = require "casync.core"

local casync = {}
for k, v in pairs(core) do casync[k] = v end

-- Lua names a C function in "bad argument" messages by searching
-- package.loaded; with the same functions in two modules the name would
-- change from run to run.  casync.core stays reachable, through a proxy.
package.loaded["casync.core"] = setmetatable({}, {__index = core})

-- Conveniences written in Lua on the C core (issue 3).
casync.rate_limiter = require "casync.rate_limiter"
casync.retry = require "casync.retry"
casync.map = require "casync.map"

-- Processes: run() and the process pool, in Lua on the C core (issue 5).
require "casync.process" -- adds run and pool to casync.process
casync.process_pool = casync.process.pool

-- HTTP/1.1 (issue 4): the server is C, the client Lua on casync.tcp.
casync.http = require "casync.http"

return casync
