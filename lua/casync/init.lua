-- casync: the Lua front end.  The scheduler, timers, combinators and wait
-- lists are C (casync.core); this module re-exports them and adds the
-- conveniences written in Lua.
local core = require "casync.core"

local casync = {}
for k, v in pairs(core) do casync[k] = v end

return casync
