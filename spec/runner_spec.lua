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
    assert.not_matches("stack traceback", err)
    code, _, err = run(q(script("local = 1")))
    assert.equal(1, code)
    assert.matches("expected", err)
    assert.not_matches("stack traceback", err)
    code, _, err = run("/nonexistent/script.lua")
    assert.equal(1, code)
    assert.matches("cannot open /nonexistent/script.lua", err)
    assert.not_matches("stack traceback", err)
    code, _, err = run("-x")
    assert.equal(1, code)
    assert.matches("unrecognized option '%-x'", err)
    assert.matches("usage:", err)
    assert.not_matches("stack traceback", err)
    assert.not_matches("in %?", err)
    code, _, err = run("-e")
    assert.equal(1, code)
    assert.matches("'%-e' needs argument", err)
    assert.not_matches("stack traceback", err)
    code, _, err = run("-l")
    assert.equal(1, code)
    assert.matches("'%-l' needs argument", err)
    code, _, err = run("-l no_such_module_xyz")
    assert.equal(1, code)
    assert.matches("module 'no_such_module_xyz' not found", err)
    assert.not_matches("stack traceback", err)
    -- as lua(1): a bad option is found before anything runs
    local out
    code, out = run("-e 'print(1)' -x")
    assert.equal(1, code)
    assert.equal("", out)
  end)

  it("prints its version with -v", function()
    local code, out = run("-v")
    assert.equal(0, code)
    assert.matches("^casync " .. casync.version:gsub("%p", "%%%0") .. " %(Lua 5%.4", out)
  end)

  it("prints its version with --version and exits, whatever follows", function()
    local code, out, err = run("--version -e 'print(1)'")
    assert.equal(0, code, err)
    assert.matches("^casync " .. casync.version:gsub("%p", "%%%0") .. " %(Lua 5%.4[^\n]*\n$", out)
  end)

  it("prints the usage on stdout and exits 0 with -h and --help", function()
    for _, opt in ipairs({"-h", "--help"}) do
      local code, out, err = run(opt .. " -e 'print(1)'")
      assert.equal(0, code)
      assert.matches("^usage: ", out)
      for _, o in ipairs({"-e stat", "-i", "-l mod", "-l g=mod", "-v", "-E", "-W",
                          "--version", "--help", "CASYNC_DEBUG"}) do
        assert.truthy(out:find(o, 1, true), o)
      end
      assert.equal("", err)
    end
  end)

  it("with no arguments runs standard input when it is not a terminal, like lua(1)", function()
    local code, out, err = run("", 'casync.sleep(0.01) print("from stdin", select("#", ...))')
    assert.equal(0, code, err)
    assert.equal("from stdin\t0\n", out)
  end)

  it("sets the global casync for -e, scripts and modules", function()
    local code, out, err = run("-e 'print(casync == require(\"casync\"))' " ..
      q(script('casync.sleep(0.01) print(type(casync.run))')))
    assert.equal(0, code, err)
    assert.equal("true\nfunction\n", out)
  end)

  it("requires -l mod into the global mod, and -l g=mod into g, in order with -e", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir " .. q(dir))
    local f = assert(io.open(dir .. "/mymod.lua", "w"))
    f:write('return {name = "mymod", seen = x}')
    f:close()
    local code, out, err = run("-e " .. q("package.path = '" .. dir .. "/?.lua;' .. package.path; x = 7") ..
      " -l mymod -l other=mymod -e 'print(mymod.name, mymod.seen, other == mymod)'")
    os.execute("rm -rf " .. q(dir))
    assert.equal(0, code, err)
    assert.equal("mymod\t7\ttrue\n", out)
    code, out, err = run("-lstring -e 'print(string == require(\"string\"))'")
    assert.equal(0, code, err)
    assert.equal("true\n", out)
  end)

  it("-i runs each line of input as a task, so it may suspend", function()
    local input = table.concat({
      "t0 = casync.now()",
      "casync.sleep(0.05)",
      "casync.now() - t0 >= 0.05, casync.current() ~= nil",
      "x = 40",
      "x + 2",
      "for i = 1, 2 do",
      "  print('loop', i)",
      "end",
      "error('boom')",
      "casync.spawn(function() casync.sleep(0.02) print('background') end)",
      "casync.sleep(0.1)",
      "print('after')",
      "local = 1",
      "print('still here')",
    }, "\n") .. "\n"
    local code, out, err = run("-i", input)
    assert.equal(0, code, err)
    assert.matches("^casync " .. casync.version:gsub("%p", "%%%0") .. " ", out)
    local printed = out:gsub(">> ", ""):gsub("> ", "")
    assert.matches("true\ttrue\n", printed)
    assert.matches("\n42\n", printed)
    assert.matches("loop\t1\nloop\t2\n", printed)
    assert.matches("background\nafter\n", printed)
    assert.matches("still here\n", printed)
    assert.matches("stdin:1: boom", err)
    assert.matches("<name> expected near '='", err)
    assert.not_matches("stack traceback", err)
  end)

  it("-i after a script and -e keeps their globals", function()
    local code, out, err = run("-e 'y = 5' -i " .. q(script("z = 6")), "y * z\n")
    assert.equal(0, code, err)
    assert.matches("> 30\n> \n$", out)
  end)

  it("-E ignores LUA_INIT and LUA_PATH; without it LUA_INIT runs first", function()
    local code, out, err = helper.sh("LUA_INIT='print(\"init\", casync ~= nil)' " ..
      q(bin) .. " -e 'print(\"e\")'")
    assert.equal(0, code, err)
    assert.equal("init\ttrue\ne\n", out)
    code, out = helper.sh("LUA_INIT='print(\"init\")' LUA_PATH='/nowhere/?.lua' " ..
      q(bin) .. " -E -e 'print(package.path:find(\"nowhere\") == nil)'")
    assert.equal(0, code)
    assert.equal("true\n", out)
    local path = script('print("init file", ...)')
    code, out = helper.sh("LUA_INIT_5_4=@" .. q(path) .. " " .. q(bin) .. " -e ''")
    assert.equal(0, code)
    assert.equal("init file\n", out)
  end)

  it("-W turns warnings on", function()
    local code, _, err = run("-W -e 'warn(\"careful\")'")
    assert.equal(0, code)
    assert.matches("Lua warning: careful", err)
    code, _, err = run("-e 'warn(\"careful\")'")
    assert.equal(0, code)
    assert.equal("", err)
  end)

  it("casync.run(main) in the script runs main in the main task (one script style)", function()
    local path = script([[
      local casync = require "casync"
      local main_task = casync.current()
      local function main(a, b)
        casync.sleep(0.01)
        return a + b, casync.current() == main_task
      end
      print(casync.run(main, 1, 2))
      print(casync.run(main, 3, 4))
    ]])
    local code, out, err = run(q(path))
    assert.equal(0, code, err)
    assert.equal("3\ttrue\n7\ttrue\n", out)
    -- and the same script under lua5.4
    local setup = ("LUA_PATH=%s LUA_CPATH=%s "):format(
      q(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;;"),
      q(helper.build .. "/lib/?.so;;"))
    code, out, err = helper.sh(setup .. "lua5.4 " .. q(path))
    assert.equal(0, code, err)
    assert.equal("3\tfalse\n7\tfalse\n", out)
  end)

  it("casync.run in the main task re-raises main's error with its traceback", function()
    local code, _, err = run(q(script([[
      casync.run(function() casync.sleep(0) error("main failed") end)
    ]])))
    assert.equal(1, code)
    assert.matches(":1: main failed\nstack traceback:", err)
  end)

  it("says that run's options cannot apply in its main task, whose loop already runs", function()
    local code, _, err = run("-e " .. q([[
      casync.run(function() end, {clock = "virtual"})
    ]]))
    assert.equal(1, code)
    assert.matches("run: options %(clock, seed, preempt%) cannot apply in the casync " ..
                   "runner's main task", err)
    -- a table that is not options is an argument, as under lua5.4
    code, _, err = run("-e " .. q([[
      assert(casync.run(function(t) return t.x end, {x = 1}) == 1)
    ]]))
    assert.equal(0, code, err)
  end)

  it("still refuses a nested run from another task or a plain coroutine", function()
    local code, out, err = run("-e " .. q([[
      local t = casync.spawn(function() return casync.run(function() end) end)
      print(pcall(t.wait, t))
      print(coroutine.wrap(function() return pcall(casync.run, print) end)())
      print(pcall(casync.run, 42))
    ]]))
    assert.equal(0, code, err)
    assert.matches("false\t[^\n]*run: cannot be called inside a task %(nested run%)\n", out)
    assert.matches("\nfalse\trun: cannot be called inside a task %(nested run%)\n", out)
    assert.matches("bad argument #1 to '[%w.]*run' %(function expected, got number%)", out)
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
      local _, usage = run("--help")
      assert.matches("%-%-trace file", usage)
      assert.matches("%-%-timeline=file.svg", usage)
    end)
  end)
end)
