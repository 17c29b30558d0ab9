-- fs.c: casync.fs (whole files, file objects, stat, directories, renames
-- and removals) on libuv's fs requests: results, errors (nil, err with
-- kind "io", code, path), bad input, cancellation, concurrency.
local casync = require "casync"
local fs = casync.fs

local errmsg = helper.errmsg

-- a fresh directory for each test, removed afterwards
local dir = helper.fresh_dir()
before_each(dir.make)
after_each(dir.remove)

local function path(name) return dir(name) end

-- Open descriptors of this process (to check nothing leaks).
local function fd_count()
  local n = 0
  for _ in fs.dir("/proc/self/fd") do n = n + 1 end
  return n
end

local function expect_io(r, err, code, op, p)
  assert.is_nil(r)
  assert.is_true(casync.is_error(err, "io"), tostring(err))
  assert.equal(code, err.code)
  if p then assert.equal(p, err.path) end
  if op then
    assert.truthy(tostring(err):find(op .. " '" .. p .. "'", 1, true), tostring(err))
  end
end

describe("fs.read_file and fs.write_file", function()
  it("round-trip text, binary data and empty files", async(function()
    local bin = {}
    for i = 0, 255 do bin[#bin + 1] = string.char(i) end
    bin = table.concat(bin):rep(3) .. "\0end"
    assert.is_true(fs.write_file(path("t"), "hello\nworld\n"))
    assert.equal("hello\nworld\n", fs.read_file(path("t")))
    assert.is_true(fs.write_file(path("b"), bin))
    assert.equal(bin, fs.read_file(path("b")))
    assert.is_true(fs.write_file(path("e"), ""))
    assert.equal("", fs.read_file(path("e")))
  end))

  it("replaces the contents, or appends with opts.append", async(function()
    assert(fs.write_file(path("f"), "a long first version"))
    assert(fs.write_file(path("f"), "short"))
    assert.equal("short", fs.read_file(path("f")))
    assert(fs.write_file(path("f"), "+more", {append = true}))
    assert.equal("short+more", fs.read_file(path("f")))
    assert(fs.write_file(path("new"), "x", {append = true}))
    assert.equal("x", fs.read_file(path("new")))
  end))

  it("creates files with opts.mode (less the umask)", async(function()
    assert(fs.write_file(path("m"), "x", {mode = "600"}))
    assert.equal(384, fs.stat(path("m")).mode) -- 0600
    assert(fs.write_file(path("m2"), "x", {mode = 256})) -- 0400
    assert.equal(256, fs.stat(path("m2")).mode)
  end))

  it("reads and writes large files (24 MB)", async(function()
    local chunk = ("0123456789abcdef"):rep(4096) -- 64 KiB
    local big = chunk:rep(384)
    assert(fs.write_file(path("big"), big))
    assert.equal(#big, fs.stat(path("big")).size)
    local back = fs.read_file(path("big"))
    assert.equal(#big, #back)
    assert.is_true(back == big)
  end, 30))

  it("reads files whose size stat does not know (/proc)", async(function()
    local s = assert(fs.read_file("/proc/self/status"))
    assert.truthy(s:find("Pid:", 1, true))
  end))

  it("return nil and an io error naming the operation and the path", async(function()
    local p = path("missing")
    local r, err = fs.read_file(p)
    expect_io(r, err, "ENOENT", "open", p)
    assert.equal("io: open '" .. p .. "': no such file or directory", tostring(err))
    r, err = fs.read_file(dir())
    expect_io(r, err, "EISDIR", "read", dir())
    r, err = fs.write_file(path("no/such/dir"), "x")
    expect_io(r, err, "ENOENT", "open", path("no/such/dir"))
    r, err = fs.write_file(dir(), "x")
    expect_io(r, err, "EISDIR", "open", dir())
  end))

  it("reject bad arguments", async(function()
    assert.truthy(errmsg(function() return fs.read_file() end)
      :find("bad argument #1 to 'read_file' (string expected, got no value)", 1, true))
    assert.truthy(errmsg(fs.read_file, ""):find("path must not be empty", 1, true))
    assert.truthy(errmsg(fs.read_file, "a\0b"):find("path contains a zero byte", 1, true))
    assert.truthy(errmsg(function() return fs.write_file(path("x")) end)
      :find("bad argument #2 to 'write_file'", 1, true))
    assert.truthy(errmsg(fs.write_file, path("x"), {}):find("bad argument #2", 1, true))
    assert.truthy(errmsg(fs.write_file, path("x"), "d", 5):find("bad argument #3", 1, true))
    assert.truthy(errmsg(fs.write_file, path("x"), "d", {mode = "9"}):find("octal", 1, true))
    assert.truthy(errmsg(fs.write_file, path("x"), "d", {mode = -1}):find("mode out of range", 1, true))
  end))

  it("suspend only the calling task", async(function()
    local ticks = 0
    local ticker = casync.spawn(function()
      while true do casync.sleep(0.001); ticks = ticks + 1 end
    end)
    local big = ("x"):rep(1 << 20)
    for i = 1, 20 do assert(fs.write_file(path("f" .. i), big)) end
    for i = 1, 20 do assert.equal(#big, #fs.read_file(path("f" .. i))) end
    ticker:cancel()
    assert.is_true(ticks >= 1)
  end))

  it("run many at once (300 tasks)", async(function()
    local tasks = {}
    for i = 1, 300 do
      tasks[i] = casync.spawn(function()
        local p = path("c" .. i)
        assert(fs.write_file(p, ("%d\n"):format(i):rep(i)))
        local s = assert(fs.read_file(p))
        assert(fs.remove(p))
        return #s
      end)
    end
    local r = casync.gather(tasks)
    for i = 1, 300 do assert.equal(#("%d\n"):format(i) * i, r[i]) end
    local n = 0
    for _ in fs.dir(dir()) do n = n + 1 end
    assert.equal(0, n)
  end))

  it("leak nothing when cancelled midway (the chain closes its file)", async(function()
    local big = ("y"):rep(8 << 20)
    assert(fs.write_file(path("big"), big))
    local before = fd_count()
    for _ = 1, 20 do
      local t = casync.spawn(fs.read_file, path("big"))
      local w = casync.spawn(fs.write_file, path("w"), big)
      casync.sleep(0)
      t:cancel()
      w:cancel()
      assert.is_true(pcall(t.wait, t) == false and t:cancelled())
      assert.is_true(w:cancelled())
    end
    local err = select(2, pcall(casync.wait_for, function() return fs.read_file(path("big")) end, 0))
    assert.is_true(casync.is_error(err, "timeout"))
    casync.sleep(0.3) -- let the abandoned requests end
    collectgarbage()
    collectgarbage()
    casync.sleep(0.05)
    assert.equal(before, fd_count())
  end))
end)

describe("fs.open and files", function()
  it("read n bytes, nil at the end, '' for 0, \"a\" for the rest", async(function()
    assert(fs.write_file(path("f"), "abcdefgh"))
    local f <close> = assert(fs.open(path("f")))
    assert.equal("abc", f:read(3))
    assert.equal("", f:read(0))
    assert.equal("defgh", f:read())
    assert.is_nil(f:read())
    assert.is_nil(f:read(5))
    assert.equal(0, f:seek("set"))
    assert.equal("abcdefgh", f:read("a"))
    assert.equal("", f:read("a"))
    assert.equal("cde", f:read(3, 2)) -- at an offset: the position stays
    assert.equal(8, f:seek())
  end))

  it("writes at the position or at an offset; seeks; stats; truncates", async(function()
    local f = assert(fs.open(path("f"), "w+"))
    assert.is_true(f:write("hello world"))
    assert.equal(11, f:seek())
    assert.is_true(f:write("J", 0))
    assert.equal(11, f:seek())
    assert.equal(0, f:seek("set", 0))
    assert.equal("Jello world", f:read("a"))
    assert.equal(6, f:seek("set", 6))
    assert.equal("world", f:read(100))
    assert.equal(9, f:seek("end", -2))
    assert.equal(10, f:seek("cur", 1))
    local st = assert(f:stat())
    assert.equal("file", st.type)
    assert.equal(11, st.size)
    assert.is_true(f:truncate(5))
    assert.equal(5, f:stat().size)
    assert.is_true(f:truncate())
    assert.equal(0, f:stat().size)
    assert.is_true(f:sync())
    assert.is_true(f:close())
  end))

  it("opens with io.open's modes, \"x\" and integer flags", async(function()
    assert(fs.write_file(path("f"), "old"))
    local r, err = fs.open(path("nope"))
    expect_io(r, err, "ENOENT", "open", path("nope"))
    local f = assert(fs.open(path("f"), "a"))
    assert(f:write("+"))
    f:close()
    assert.equal("old+", fs.read_file(path("f")))
    f = assert(fs.open(path("f"), "r+"))
    assert(f:write("O"))
    f:close()
    assert.equal("Old+", fs.read_file(path("f")))
    f = assert(fs.open(path("f"), "wb"))
    f:close()
    assert.equal("", fs.read_file(path("f")))
    r, err = fs.open(path("f"), "wx")
    expect_io(r, err, "EEXIST", "open", path("f"))
    f = assert(fs.open(path("g"), "wx", "640"))
    f:close()
    assert.equal(416, fs.stat(path("g")).mode) -- 0640
    f = assert(fs.open(path("g"), 0)) -- O_RDONLY
    assert.is_nil(f:read())
    f:close()
    -- a file opened for reading cannot be written
    f = assert(fs.open(path("g"), "r"))
    r, err = f:write("x")
    expect_io(r, err, "EBADF", "write", path("g"))
    f:close()
  end))

  it("closes: twice is harmless, use after close raises, <close> and __gc", async(function()
    assert(fs.write_file(path("f"), "x"))
    local f = assert(fs.open(path("f")))
    assert.truthy(tostring(f):find("casync.File (" .. path("f") .. ")", 1, true))
    assert.is_false(f:closed())
    assert.is_number(f:fileno())
    assert.is_true(f:close())
    assert.is_true(f:close())
    assert.is_true(f:closed())
    assert.equal("casync.File (closed)", tostring(f))
    for _, m in ipairs({"read", "write", "seek", "stat", "sync", "truncate", "fileno"}) do
      assert.truthy(errmsg(f[m], f, "x"):find(m .. ": attempt to use a closed file", 1, true), m)
    end
    local before = fd_count()
    do
      local g <close> = assert(fs.open(path("f")))
      assert.equal(before + 1, fd_count())
    end
    assert.equal(before, fd_count())
    for _ = 1, 10 do assert(fs.open(path("f"))) end
    collectgarbage()
    collectgarbage()
    assert.equal(before, fd_count())
  end))

  it("closing while a read is in flight closes when it ends", async(function()
    assert(fs.write_file(path("f"), ("z"):rep(1 << 22)))
    local f = assert(fs.open(path("f")))
    local t = casync.spawn(function() return f:read("a") end)
    casync.sleep(0)
    f:close()
    local ok, s = pcall(t.wait, t)
    assert.is_true(ok)
    assert.equal(1 << 22, #s)
  end))

  it("reads one file from many tasks at offsets", async(function()
    local parts = {}
    for i = 1, 100 do parts[i] = ("%03d"):format(i) end
    assert(fs.write_file(path("f"), table.concat(parts)))
    local f <close> = assert(fs.open(path("f")))
    local tasks = {}
    for i = 1, 100 do
      tasks[i] = function() return f:read(3, (i - 1) * 3) end
    end
    local r = casync.gather(tasks)
    for i = 1, 100 do assert.equal(parts[i], r[i]) end
  end))

  it("rejects bad arguments", async(function()
    assert(fs.write_file(path("f"), "x"))
    assert.truthy(errmsg(fs.open, path("f"), "q"):find("invalid mode", 1, true))
    assert.truthy(errmsg(fs.open, path("f"), "r", {}):find("bad argument #3", 1, true))
    assert.truthy(errmsg(fs.open, path("f"), -1):find("flags out of range", 1, true))
    local f <close> = assert(fs.open(path("f"), "r+"))
    assert.truthy(errmsg(f.read, f, -1):find("count must be between", 1, true))
    assert.truthy(errmsg(f.read, f, "l"):find("invalid format", 1, true))
    assert.truthy(errmsg(f.read, f, 1, -5):find("offset must be non-negative", 1, true))
    assert.truthy(errmsg(function() return f:write() end):find("bad argument #1 to 'write'", 1, true))
    assert.truthy(errmsg(function() return f:write("x", 1.5) end):find("bad argument #2 to 'write'", 1, true))
    assert.truthy(errmsg(f.seek, f, "top"):find("invalid option 'top'", 1, true))
    assert.truthy(errmsg(f.truncate, f, -1):find("size must be non-negative", 1, true))
    assert.truthy(errmsg(f.read, {}):find("casync.File expected", 1, true))
  end))
end)

describe("fs.stat, lstat, readlink, symlink, chmod, copyfile", function()
  it("describe files, directories and links", async(function()
    assert(fs.write_file(path("f"), "12345"))
    local st = assert(fs.stat(path("f")))
    assert.equal("file", st.type)
    assert.equal(5, st.size)
    assert.is_number(st.mtime)
    assert.is_true(math.abs(st.mtime - os.time()) < 60)
    for _, k in ipairs({"atime", "ctime", "birthtime", "nlink", "uid", "gid", "ino", "dev", "blocks", "blksize"}) do
      assert.is_number(st[k], k)
    end
    assert.equal("directory", fs.stat(dir()).type)
    assert.is_true(fs.symlink(path("f"), path("l")))
    assert.equal("file", fs.stat(path("l")).type)
    assert.equal("link", fs.lstat(path("l")).type)
    assert.equal(path("f"), fs.readlink(path("l")))
    assert.equal("char", fs.stat("/dev/null").type)
    local r, err = fs.stat(path("nope"))
    expect_io(r, err, "ENOENT", "stat", path("nope"))
    r, err = fs.readlink(path("f"))
    expect_io(r, err, "EINVAL", "readlink", path("f"))
    r, err = fs.symlink(path("f"), path("l"))
    expect_io(r, err, "EEXIST")
  end))

  it("chmod and copyfile", async(function()
    assert(fs.write_file(path("f"), "data"))
    assert.is_true(fs.chmod(path("f"), "600"))
    assert.equal(384, fs.stat(path("f")).mode)
    assert.is_true(fs.copyfile(path("f"), path("g")))
    assert.equal("data", fs.read_file(path("g")))
    local r, err = fs.copyfile(path("nope"), path("h"))
    assert.is_nil(r)
    assert.equal("ENOENT", err.code)
    assert.truthy(tostring(err):find("copyfile '" .. path("nope") .. "' -> '" .. path("h") .. "'", 1, true))
    assert.truthy(errmsg(fs.chmod, path("f")):find("bad argument #2", 1, true))
  end))
end)

describe("fs.mkdir, dir, rename, remove, unlink, rmdir", function()
  it("mkdir makes one directory; recursive makes the parents", async(function()
    assert.is_true(fs.mkdir(path("a")))
    local r, err = fs.mkdir(path("a"))
    expect_io(r, err, "EEXIST", "mkdir", path("a"))
    r, err = fs.mkdir(path("x/y"))
    expect_io(r, err, "ENOENT", "mkdir", path("x/y"))
    assert.is_true(fs.mkdir(path("x/y/z/"), {recursive = true}))
    assert.equal("directory", fs.stat(path("x/y/z")).type)
    assert.is_true(fs.mkdir(path("x/y/z"), {recursive = true})) -- already there
    assert.is_true(fs.mkdir(path("m"), "700"))
    assert.equal(448, fs.stat(path("m")).mode)
    assert.is_true(fs.mkdir(path("n/o"), {recursive = true, mode = 448}))
    assert.equal(448, fs.stat(path("n/o")).mode)
    assert(fs.write_file(path("file"), ""))
    r, err = fs.mkdir(path("file"), {recursive = true})
    expect_io(r, err, "EEXIST", "mkdir", path("file"))
    r, err = fs.mkdir(path("file/sub"), {recursive = true})
    expect_io(r, err, "ENOTDIR", "mkdir", path("file/sub"))
    assert.truthy(errmsg(fs.mkdir, path("q"), "rwx"):find("octal", 1, true))
  end))

  it("dir lists entries sorted, with their types", async(function()
    assert(fs.mkdir(path("d")))
    assert(fs.write_file(path("b.txt"), ""))
    assert(fs.write_file(path("a.txt"), ""))
    assert(fs.symlink("a.txt", path("c")))
    local got = {}
    for name, t in fs.dir(dir()) do got[#got + 1] = name .. ":" .. t end
    assert.same({"a.txt:file", "b.txt:file", "c:link", "d:directory"}, got)
    for _ in fs.dir(path("d")) do error("not empty") end
    for name in fs.dir(dir()) do
      assert.equal("a.txt", name)
      break
    end
  end))

  it("dir raises its error (for use in a for loop)", async(function()
    local ok, err = pcall(fs.dir, path("nope"))
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "io"))
    assert.equal("ENOENT", err.code)
    assert.equal(path("nope"), err.path)
    assert(fs.write_file(path("f"), ""))
    ok, err = pcall(fs.dir, path("f"))
    assert.equal("ENOTDIR", err.code)
  end))

  it("rename, remove (files and empty directories), unlink, rmdir", async(function()
    assert(fs.write_file(path("f"), "1"))
    assert.is_true(fs.rename(path("f"), path("g")))
    assert.is_nil(fs.stat(path("f")))
    assert.equal("1", fs.read_file(path("g")))
    local r, err = fs.rename(path("f"), path("h"))
    expect_io(r, err, "ENOENT")
    assert.truthy(tostring(err):find("rename '" .. path("f") .. "' -> '" .. path("h") .. "'", 1, true))
    assert.is_true(fs.remove(path("g")))
    r, err = fs.remove(path("g"))
    expect_io(r, err, "ENOENT", "remove", path("g"))
    assert(fs.mkdir(path("d")))
    assert.is_true(fs.remove(path("d")))
    assert(fs.mkdir(path("d")))
    assert(fs.write_file(path("d/x"), ""))
    r, err = fs.remove(path("d"))
    expect_io(r, err, "ENOTEMPTY", "rmdir", path("d"))
    r, err = fs.unlink(path("d"))
    assert.is_nil(r)
    assert.truthy(err.code == "EISDIR" or err.code == "EPERM")
    assert.is_true(fs.unlink(path("d/x")))
    r, err = fs.rmdir(path("nope"))
    expect_io(r, err, "ENOENT", "rmdir", path("nope"))
    assert.is_true(fs.rmdir(path("d")))
  end))
end)

describe("fs outside a task", function()
  it("raises for every waiting function", function()
    local calls = {
      {"read_file", "x"}, {"write_file", "x", "d"}, {"open", "x"}, {"stat", "x"},
      {"lstat", "x"}, {"mkdir", "x"}, {"dir", "x"}, {"rename", "x", "y"},
      {"remove", "x"}, {"unlink", "x"}, {"rmdir", "x"}, {"readlink", "x"},
      {"copyfile", "x", "y"}, {"chmod", "x", 420}, {"symlink", "x", "y"},
    }
    for _, c in ipairs(calls) do
      local msg = errmsg(fs[c[1]], table.unpack(c, 2))
      assert.truthy(msg:find(c[1] .. ": must be called inside a task", 1, true), msg)
    end
  end)

  it("raises in a plain coroutine inside a task", async(function()
    local co = coroutine.create(function() return fs.read_file("/etc/hostname") end)
    local ok, msg = coroutine.resume(co)
    assert.is_false(ok)
    assert.truthy(msg:find("cannot suspend a coroutine that casync does not manage", 1, true))
  end))
end)
