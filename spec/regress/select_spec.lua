-- Regressions of casync.select (issue 8): ties among cases that became ready
-- while select waited, the empty select, and a select too large for a stack.
local casync = require "casync"
local async, errmsg = helper.async, helper.errmsg

describe("regress: select", function()
  it("a blocked select completes its ready cases in random order (two sends)",
     async(function()
    local counts = {0, 0}
    for _ = 1, 400 do
      local c = casync.channel()
      local t = casync.spawn(function()
        return (casync.select({{c, "send", 0}, {c, "send", 1}}))
      end)
      casync.sleep(0) -- t now waits on both cases
      assert.is_true(c:recv() ~= nil)
      local i = t:wait()
      counts[i] = counts[i] + 1
    end
    -- Go picks each about half the time; 400 fair coin flips land
    -- below 100 on one side with a probability under 1e-23
    assert.is_true(counts[1] > 100 and counts[2] > 100,
                   ("case 1: %d, case 2: %d"):format(counts[1], counts[2]))
  end))

  it("... and two receive cases", async(function()
    local counts = {0, 0}
    for _ = 1, 400 do
      local c = casync.channel()
      local t = casync.spawn(function()
        return (casync.select({{c, "recv"}, {c, "recv"}}))
      end)
      casync.sleep(0)
      c:send("x")
      local i = t:wait()
      counts[i] = counts[i] + 1
    end
    assert.is_true(counts[1] > 100 and counts[2] > 100,
                   ("case 1: %d, case 2: %d"):format(counts[1], counts[2]))
  end))

  it("select({}, 0) returns nil, as Go's select { default: }", async(function()
    assert.is_nil(casync.select({}, 0))
    local t0 = casync.now()
    assert.is_nil(casync.select({}, 0.05)) -- nothing to wait for but time
    assert.is_true(casync.now() - t0 >= 0.045)
    assert.matches("no cases", errmsg(casync.select, {}))
  end))

  it("a select with about a million send cases raises instead of crashing",
     async(function()
    local c = casync.channel()
    local cases = {}
    for i = 1, 1000000 do cases[i] = {c, "send", i} end
    local err = errmsg(casync.select, cases)
    assert.matches("select: too many cases", err)
    -- nothing was left waiting on the channel
    assert.is_false(c:try_send(1) and true or false)
  end, 60))
end)
