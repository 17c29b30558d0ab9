-- runner.c: the `casync` command.  It runs a script (or -e code) as the main
-- task, so the script may suspend at top level; `arg` and `...` are set as
-- lua(1) sets them; failures are printed with their traceback.
local casync = require "casync"

local q = helper.quote
local bin = helper.build .. "/casync"

-- script(src) -> the path of a temporary script holding src
local scripts = {}
local function script(src)
  local name = os.tmpname() .. ".lua"
  local f = assert(io.open(name, "w"))
  f:write(src)
  f:close()
  scripts[#scripts+1] = name
  return name
end

-- casync(args [, stdin]) -> exit code, stdout, stderr
local function run(args, stdin)
  return helper.sh(q(bin) .. " " .. args, stdin)
end

describe("the casync runner", function()
  teardown(function()
    for _, name in ipairs(scripts) do os.remove(name) end
  end)

  it("runs a script and exits 0", function()
    local code, out, err = run(q(script('print("hello")')))
    assert.equal(0, code, err)
    assert.equal("hello\n", out)
    assert.equal("", err)
  end)

  it("passes the script's arguments as ... and in arg, like lua(1)", function()
    local path = script([[
      print(select("#", ...), ...)
      print(arg[-1] ~= nil, arg[0], arg[1], arg[2], arg[3], #arg)
    ]])
    local code, out, err = run(q(path) .. " one 'two words' ''")
    assert.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines+1] = l end
    assert.equal("3\tone\ttwo words\t", lines[1])
    assert.equal("true\t" .. path .. "\tone\ttwo words\t\t3", lines[2])
    -- the same as lua5.4 itself
    local _, lout = helper.sh("lua5.4 " .. q(path) .. " one 'two words' ''")
    assert.equal(lout:gsub("[^\n]*\n", "", 1):gsub("^true", ""),
                 out:gsub("[^\n]*\n", "", 1):gsub("^true", ""))
  end)

  it("puts the command and the options before the script in arg", function()
    local path = script('print(arg[-3], arg[-2], arg[-1], arg[0])')
    local code, out = run("-e 'x = 1' " .. q(path))
    assert.equal(0, code)
    assert.equal(bin .. "\t-e\tx = 1\t" .. path .. "\n", out)
  end)

  it("runs -e code, several times and before the script", function()
    local path = script('print("script", x)')
    local code, out, err = run("-e 'x = 1' -e 'x = x + 1; print(\"e\", x)' " .. q(path))
    assert.equal(0, code, err)
    assert.equal("e\t2\nscript\t2\n", out)
    code, out = run("-e'print(42)'")
    assert.equal(0, code)
    assert.equal("42\n", out)
  end)

  it("with -e only, sets arg as lua(1) does (the command at 0)", function()
    local code, out = run("-e 'print(arg[0] ~= nil, arg[1], arg[2], arg[-1])'")
    assert.equal(0, code)
    assert.equal("true\t-e\tprint(arg[0] ~= nil, arg[1], arg[2], arg[-1])\tnil\n", out)
  end)

  it("lets a script suspend at top level", function()
    local code, out, err = run(q(script([[
      local casync = require "casync"
      local t0 = casync.now()
      casync.sleep(0.05)
      local a, b = casync.gather(function() casync.sleep(0.01); return "a" end,
                                 function() return "b" end)
      print(a, b, casync.now() - t0 >= 0.05, casync.current() ~= nil)
    ]])))
    assert.equal(0, code, err)
    assert.equal("a\tb\ttrue\ttrue\n", out)
  end)

  it("reads the script from standard input with -", function()
    local code, out = run("- x y", 'print("stdin", ...)')
    assert.equal(0, code)
    assert.equal("stdin\tx\ty\n", out)
  end)

  it("stops handling options at --", function()
    local path = script('print(...)')
    local code, out = run("-- " .. q(path) .. " -e")
    assert.equal(0, code)
    assert.equal("-e\n", out)
  end)

  it("prints the error with its traceback and exits 1", function()
    local path = script([[
      local casync = require "casync"
      local function fails()
        casync.sleep(0)
        error("script failed")
      end
      fails()
    ]])
    local code, out, err = run(q(path))
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches(":4: script failed\nstack traceback:", err)
    assert.matches(":4: in local 'fails'", err)
    assert.matches(":6: in main chunk", err)
  end)

  it("prints a task's failure re-raised at top level with where it failed", function()
    local code, _, err = run("-e " .. q([[
      local casync = require "casync"
      local t = casync.spawn(function() casync.sleep(0); error("in the task") end)
      t:wait()
    ]]))
    assert.equal(1, code)
    assert.matches("in the task\nstack traceback:", err)
    assert.matches("raised again from task #%d+, which failed here:", err)
    assert.matches("task #%d+ was spawned at %(command line%):2", err)
  end)

  it("prints a non-string error", function()
    local code, _, err = run("-e 'error({})'")
    assert.equal(1, code)
    assert.matches("table: 0x%x+", err)
    code, _, err = run("-e " .. q('error(setmetatable({}, {__tostring = function() return "custom" end}))'))
    assert.equal(1, code)
    assert.matches("custom", err)
    code, _, err = run("-e " .. q('local casync = require "casync"; casync.wait_for(function() casync.sleep(1) end, 0.001)'))
    assert.equal(1, code)
    assert.matches("timeout: wait_for: timed out", err)
    assert.matches("stack traceback:", err)
  end)

  it("reports a deadlock and exits 1", function()
    local code, _, err = run("-e " .. q([[
      local casync = require "casync"
      local main = casync.current()
      casync.spawn(function() main:wait() end):wait()
    ]]))
    assert.equal(1, code)
    assert.matches("deadlock: the main task waits in task:wait%(%)", err)
  end)

  it("exits with os.exit's code", function()
    assert.equal(3, (run("-e 'os.exit(3)'")))
    assert.equal(0, (run("-e 'os.exit(true)'")))
    assert.equal(1, (run("-e 'os.exit(false)'")))
  end)

  it("reports an unobserved task failure, and still exits 0", function()
    local code, out, err = run("-e " .. q([[
      local casync = require "casync"
      casync.spawn(function() error("forgotten") end)
      casync.sleep(0.01)
      print("done")
    ]]))
    assert.equal(0, code)
    assert.equal("done\n", out)
    assert.matches("failed and nothing waited for it: .-forgotten", err)
  end)

  it("cancels the tasks left at the end, running their cleanup", function()
    local code, out = run("-e " .. q([[
      local casync = require "casync"
      casync.spawn(function()
        local c <close> = setmetatable({}, {__close = function()
          casync.sleep(0.01); print("cleaned up")
        end})
        casync.sleep(60)
      end)
      casync.sleep(0)
      print("main ends")
    ]]))
    assert.equal(0, code)
    assert.equal("main ends\ncleaned up\n", out)
  end)

  it("fails cleanly on a syntax error, a missing script, an unknown option", function()
    local code, _, err = run("-e 'x ='")
    assert.equal(1, code)
    assert.matches("unexpected symbol", err)
    code, _, err = run(q(script("local = 1")))
    assert.equal(1, code)
    assert.matches("expected", err)
    code, _, err = run("/nonexistent/script.lua")
    assert.equal(1, code)
    assert.matches("cannot open /nonexistent/script.lua", err)
    code, _, err = run("-x")
    assert.equal(1, code)
    assert.matches("unrecognized option '%-x'", err)
    assert.matches("usage:", err)
    code, _, err = run("-e")
    assert.equal(1, code)
    assert.matches("'%-e' needs an argument", err)
  end)

  it("prints its version with -v", function()
    local code, out = run("-v")
    assert.equal(0, code)
    assert.matches("^casync " .. casync.version:gsub("%p", "%%%0") .. " %(Lua 5%.4", out)
  end)

  it("prints usage and exits 0 with no arguments", function()
    local code, out, err = run("")
    assert.equal(0, code)
    assert.matches("usage:", err)
  end)

  it("uses its own casync and has luv sharing the loop", function()
    local code, out, err = run("-e " .. q([[
      local casync = require "casync"
      local uv = require "luv"
      local timer = uv.new_timer()
      local fired = false
      timer:start(5, 0, function() fired = true; timer:close() end)
      casync.sleep(0.02)
      print(fired, casync.version)
    ]]))
    assert.equal(0, code, err)
    assert.equal("true\t" .. casync.version .. "\n", out)
  end)

  describe("--trace and --timeline", function()
    local two = script([[
      local casync = require "casync"
      casync.gather(function() casync.sleep(0.2) end, function() casync.sleep(0.1) end)
      print("done")
    ]])

    it("--timeline prints the chart on stderr at the end: a row a task", function()
      local code, out, err = run("--timeline " .. q(two))
      assert.equal(0, code, err)
      assert.equal("done\n", out)
      local rows = {}
      for line in err:gmatch("[^\n]+") do
        if line:match("^%s*#%d+ ") then rows[#rows + 1] = line end
      end
      assert.equal(3, #rows, err)
      assert.matches("^#1 main ", rows[1])
      assert.matches("wall 0%.2%d s, sum of waits 0%.3%d s: 1%.%d× concurrency\n$", err)
      -- as wide as COLUMNS says when stderr is no terminal
      code, out, err = helper.sh("COLUMNS=50 " .. q(bin) .. " --timeline " .. q(two))
      for line in err:gmatch("[^\n]+") do
        if line:match("^%s*#%d+ ") then assert.equal(50, utf8.len(line)) end
      end
    end)

    it("--trace file writes Chrome trace-event JSON, also when the script fails", function()
      local file = os.tmpname()
      local code, _, err = run("--trace " .. q(file) .. " " .. q(two))
      assert.equal(0, code, err)
      assert.equal("", err)
      local f = assert(io.open(file))
      local doc = require("cjson").decode(f:read("a"))
      f:close()
      local names = {}
      for _, e in ipairs(doc.traceEvents) do
        if e.name == "thread_name" then names[#names + 1] = e.args.name end
      end
      assert.same({"task #1", "task #2", "task #3"}, names)
      code, _, err = run("--trace=" .. q(file) .. " -e " .. q("require('casync').sleep(0.01) error('late')"))
      assert.equal(1, code)
      assert.matches("late", err)
      f = assert(io.open(file))
      assert.matches('"cat":"wait"', f:read("a"))
      f:close()
      os.remove(file)
    end)

    it("--timeline=file.svg writes the chart as SVG", function()
      local file = os.tmpname() .. ".svg"
      local code, out, err = run("--timeline=" .. q(file) .. " " .. q(two))
      assert.equal(0, code, err)
      assert.equal("", err)
      local f = assert(io.open(file))
      local svg = f:read("a")
      f:close()
      os.remove(file)
      assert.matches("^<svg ", svg)
      assert.truthy(svg:find("casync timeline of " .. two:match("[^/]*$"), 1, true))
    end)

    it("says what is wrong with them", function()
      local code, _, err = run("--trace")
      assert.equal(1, code)
      assert.matches("'%-%-trace' needs a file name", err)
      code, _, err = run("--timeline= " .. q(two))
      assert.equal(1, code)
      assert.matches("'%-%-timeline=' needs a file name", err)
      code, _, err = run("--timeline=/nonexistent/dir/x.svg -e 'print(1)'")
      assert.equal(1, code)
      assert.matches("%-%-timeline: /nonexistent/dir/x.svg: No such file or directory", err)
      code, _, err = run("--trace /nonexistent/dir/x.json -e 'print(1)'")
      assert.equal(1, code)
      assert.matches("trace: cannot write /nonexistent/dir/x.json", err)
      local _, _, usage = run("")
      assert.matches("%-%-trace file", usage)
      assert.matches("%-%-timeline=file.svg", usage)
    end)
  end)
end)
