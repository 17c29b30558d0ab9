-- casync.h: a C host embeds Lua, installs its own loop with casync_set_loop,
-- spawns tasks with casync_spawn and runs them with its own uv_run.
local build = os.getenv("CASYNC_BUILD") or "build"

describe("the C embedding API", function()
  it("runs tasks on the host's loop, interleaved with its own handles", function()
    local p = io.popen(build .. "/embed_host lua 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.equal("fast,host timer,slow\nloop close: ok\n", out)
    assert.is_true(ok)
  end)
end)
