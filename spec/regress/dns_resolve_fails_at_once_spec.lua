-- Regression: casync.dns.resolve("") (a lookup libuv refuses at once, no
-- callback to come) continued in resolve_k without a wait kind set, and
-- casync__woken read t->wait of a task that had never waited: SIGSEGV.
-- Found by spec/lua/init_spec.lua's sweep.  Run in a child process, so a
-- crash fails this spec instead of ending busted.
describe("a DNS lookup libuv refuses at once", function()
  it("returns nil and an error, also in a task that never waited before", function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        local t = casync.spawn(function() return casync.dns.resolve("") end)
        local r, e = t:wait()
        print(r, casync.is_error(e, "io"), e.code)
        -- and after other waits
        casync.sleep(0)
        r, e = casync.dns.resolve("")
        print(r, casync.is_error(e, "io"))
      end)
    ]])
    assert.equal(0, code, err)
    assert.matches("^nil\ttrue\t[%u_]+\nnil\ttrue\n$", out)
  end)
end)
