local casync = require "casync"

describe("casync.sleep", function()
  it("suspends only the calling task", async(function()
    local order = {}
    local a = casync.spawn(function() casync.sleep(0.05); order[#order+1] = "a" end)
    local b = casync.spawn(function() casync.sleep(0.01); order[#order+1] = "b" end)
    a:wait(); b:wait()
    assert.same({"b", "a"}, order)
  end))
end)
