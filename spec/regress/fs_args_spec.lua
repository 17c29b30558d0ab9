-- Regression (issue 8): fs.chmod(path, nil) set mode 000 instead of
-- raising.  The sweep behind this spec tried nil, NaN, 1.5, huge, negative
-- and wrongly typed values for every argument of every fs function and
-- file method, calls outside a task and on closed files; besides chmod it
-- found opts.mode errors naming argument #-1, NaN reported as "got number",
-- and " 644" / "+644" taken for modes.  Calls are written `local _ = f(...)`
-- so that Lua knows the function's name (not '?').
local casync = require "casync"
local fs = casync.fs

local errmsg = helper.errmsg

-- a fresh directory for each test, removed afterwards
local dir = helper.fresh_dir()
before_each(dir.make)
after_each(dir.remove)

-- Asserts that fn raises a message containing `want`.
local function raises(want, fn)
  local msg = errmsg(fn)
  assert.truthy(msg:find(want, 1, true), "wanted: " .. want .. "\n   got: " .. msg)
end

local NAN, HUGE = 0 / 0, math.huge

describe("fs arguments", function()
  it("chmod requires a mode: nil raises and leaves the file alone", async(function()
    local p = dir() .. "/f"
    assert(fs.write_file(p, "x", {mode = "640"}))
    raises("bad argument #2 to 'chmod' (integer or octal string expected, got nil)",
           function() local _ = fs.chmod(p, nil) end)
    raises("bad argument #2 to 'chmod' (integer or octal string expected, got no value)",
           function() local _ = fs.chmod(p) end)
    assert.equal(416, fs.stat(p).mode) -- still 0640
    assert.is_true(fs.chmod(p, 0))     -- 0 is a mode like any other
    assert.equal(0, fs.stat(p).mode)
  end))

  it("every permission argument rejects what is not a mode", async(function()
    local p = dir() .. "/f"
    assert(fs.write_file(p, "x"))
    local calls = { -- name, argument number, how the value is passed
      {"chmod", 2, function(v) local _ = fs.chmod(p, v) end, "mode"},
      {"mkdir", 2, function(v) local _ = fs.mkdir(dir() .. "/d", v) end, "mode"},
      {"mkdir", 2, function(v) local _ = fs.mkdir(dir() .. "/d", {mode = v}) end, "opts.mode"},
      {"write_file", 3, function(v) local _ = fs.write_file(p, "x", {mode = v}) end, "opts.mode"},
      {"open", 3, function(v) local _ = fs.open(p, "r", v) end, "mode"},
    }
    local bad = {
      {NAN, "has no integer representation"}, {1.5, "has no integer representation"},
      {HUGE, "has no integer representation"}, {-HUGE, "has no integer representation"},
      {-1, "out of range"}, {4096, "out of range"}, {math.maxinteger, "out of range"},
      {math.mininteger, "out of range"}, {"", "must be octal digits"},
      {"9", "must be octal digits"}, {"-1", "must be octal digits"},
      {" 644", "must be octal digits"}, {"+644", "must be octal digits"},
      {"0x1ff", "must be octal digits"}, {"10000", "out of range"},
      {"77777777777777777777777", "out of range"},
    }
    for _, c in ipairs(calls) do
      local head = ("bad argument #%d to '%s' (%s "):format(c[2], c[1], c[4])
      for _, b in ipairs(bad) do raises(head .. b[2], function() c[3](b[1]) end) end
      local typed = c[4] == "mode" and "" or "opts.mode: "
      raises(("bad argument #%d to '%s' (%sinteger or octal string expected, got boolean)")
        :format(c[2], c[1], typed), function() c[3](true) end)
    end
  end))

  it("every path argument rejects nil, tables, empty strings and zero bytes", async(function()
    local calls = {
      {"read_file", 1}, {"write_file", 1, "d"}, {"open", 1}, {"stat", 1}, {"lstat", 1},
      {"mkdir", 1}, {"dir", 1}, {"remove", 1}, {"unlink", 1}, {"rmdir", 1},
      {"readlink", 1}, {"chmod", 1, 420}, {"rename", 1, "y"}, {"rename", 2},
      {"copyfile", 1, "y"}, {"copyfile", 2}, {"symlink", 1, "y"}, {"symlink", 2},
    }
    for _, c in ipairs(calls) do
      local name, n = c[1], c[2]
      -- a call through the field itself, so that Lua names it
      local fn = load("local fs, a, b = ...; local _ = fs." .. name .. "(a, b)")
      local function call(v)
        local args = {"x", "x"}
        args[n] = v
        if n == 1 and c[3] then args[2] = c[3] end
        fn(fs, args[1], args[2])
      end
      local head = ("bad argument #%d to '%s' ("):format(n, name)
      raises(head .. "string expected, got nil)", function() call(nil) end)
      raises(head .. "string expected, got table)", function() call({}) end)
      raises(head .. "path must not be empty)", function() call("") end)
      raises(head .. "path contains a zero byte)", function() call("a\0b") end)
    end
  end))

  it("write_file checks its data and options", async(function()
    local p = dir() .. "/f"
    raises("bad argument #2 to 'write_file' (string expected, got nil)",
           function() local _ = fs.write_file(p, nil) end)
    raises("bad argument #2 to 'write_file' (string expected, got table)",
           function() local _ = fs.write_file(p, {}) end)
    raises("bad argument #3 to 'write_file' (table expected, got string)",
           function() local _ = fs.write_file(p, "d", "append") end)
    raises("bad argument #2 to 'mkdir' (integer or octal string expected, got boolean)",
           function() local _ = fs.mkdir(p, true) end)
  end))

  it("open checks its flags", async(function()
    local p = dir() .. "/f"
    assert(fs.write_file(p, "x"))
    for _, v in ipairs({NAN, 1.5, HUGE}) do
      raises("bad argument #2 to 'open' (number has no integer representation)",
             function() local _ = fs.open(p, v) end)
    end
    for _, v in ipairs({-1, 1 << 31, math.maxinteger, math.mininteger}) do
      raises("bad argument #2 to 'open' (flags out of range)",
             function() local _ = fs.open(p, v) end)
    end
    for _, v in ipairs({"", "q", "rw", "rx", "r+q"}) do
      raises("bad argument #2 to 'open' (invalid mode", function() local _ = fs.open(p, v) end)
    end
    raises("bad argument #2 to 'open' (string expected, got table)",
           function() local _ = fs.open(p, {}) end)
  end))

  it("file methods check counts, offsets, sizes and whence", async(function()
    local p = dir() .. "/f"
    assert(fs.write_file(p, "0123456789"))
    local f <close> = assert(fs.open(p, "r+"))
    local function each(values, want, fn)
      for _, v in ipairs(values) do raises(want, function() fn(v) end) end
    end
    each({NAN, 1.5, HUGE}, "bad argument #1 to 'read' (number has no integer representation)",
         function(v) local _ = f:read(v) end)
    each({-1, (1 << 30) + 1, math.maxinteger, math.mininteger},
         "bad argument #1 to 'read' (count must be between 0 and 2^30)",
         function(v) local _ = f:read(v) end)
    each({"l", "", {}}, "bad argument #1 to 'read' (", function(v) local _ = f:read(v) end)
    for _, m in ipairs({"read", "write"}) do
      local call = m == "read" and function(v) local _ = f:read(1, v) end
                                or function(v) local _ = f:write("x", v) end
      each({NAN, 1.5, HUGE}, "bad argument #2 to '" .. m .. "' (number has no integer representation)", call)
      each({-1, math.mininteger}, "bad argument #2 to '" .. m .. "' (offset must be non-negative)", call)
      each({{}, true}, "bad argument #2 to '" .. m .. "' (number expected", call)
    end
    each({nil, {}, true}, "bad argument #1 to 'write' (string expected",
         function(v) local _ = f:write(v) end)
    each({NAN, 1.5, HUGE}, "bad argument #1 to 'truncate' (number has no integer representation)",
         function(v) local _ = f:truncate(v) end)
    each({-1, math.mininteger}, "bad argument #1 to 'truncate' (size must be non-negative)",
         function(v) local _ = f:truncate(v) end)
    each({"top", 1, {}}, "bad argument #1 to 'seek' (", function(v) local _ = f:seek(v) end)
    each({NAN, 1.5, {}}, "bad argument #2 to 'seek' (", function(v) local _ = f:seek("set", v) end)
    raises("bad argument #1 to 'read' (casync.File expected, got table)",
           function() local _ = f.read({}) end)
    -- values the kernel refuses come back as errors, not crashes
    for _, r in ipairs({table.pack(f:read(1, math.maxinteger)),
                        table.pack(f:read("a", math.maxinteger)),
                        table.pack(f:write("x", math.maxinteger)),
                        table.pack(f:seek("set", math.maxinteger)),
                        table.pack(f:truncate(math.maxinteger))}) do
      assert.is_true(r[1] == nil or r[1] == "" or math.type(r[1]) == "integer")
      if r[2] ~= nil then assert.is_true(casync.is_error(r[2], "io")) end
    end
  end))

  it("every waiting function raises outside a task, methods too", function()
    local p = os.tmpname()
    local f = casync.run(function() return assert(fs.open(p, "r+")) end)
    local calls = {
      {"read", function() local _ = f:read() end}, {"read", function() local _ = f:read(0) end},
      {"write", function() local _ = f:write("x") end}, {"stat", function() local _ = f:stat() end},
      {"sync", function() local _ = f:sync() end},
      {"truncate", function() local _ = f:truncate() end},
      {"chmod", function() local _ = fs.chmod(p, 420) end},
    }
    for _, c in ipairs(calls) do
      raises(c[1] .. ": must be called inside a task", c[2])
    end
    -- those that never wait work anywhere
    assert.equal(0, f:seek("set"))
    assert.is_number(f:fileno())
    assert.is_true(f:close())
    os.remove(p)
  end)

  it("closed files raise for every method but close, closed and tostring", async(function()
    local p = dir() .. "/f"
    assert(fs.write_file(p, "x"))
    local f = assert(fs.open(p))
    f:close()
    for _, m in ipairs({"read", "write", "seek", "stat", "sync", "truncate", "fileno"}) do
      raises(m .. ": attempt to use a closed file", function() local _ = f[m](f, "x") end)
    end
    assert.is_true(f:close())
    assert.is_true(f:closed())
    assert.equal("casync.File (closed)", tostring(f))
  end))
end)
