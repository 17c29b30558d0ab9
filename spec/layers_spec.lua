-- The house rules ARCHITECTURE.md states, checked on the sources: layers
-- (each file includes casync headers of its own layer or below, so it can
-- call nothing above it), file sizes, and the C style (.clang-format).
local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function src_files(ext)
  local p = io.popen("ls src/*." .. ext)
  local list = {}
  for name in p:lines() do list[#list + 1] = name end
  p:close()
  return list
end

-- casync's own headers and the layer each belongs to
local layer_of = {
  ["casync.h"] = 0, ["context.h"] = 0,
  ["scheduler.h"] = 1,
  ["prim.h"] = 2, ["chan.h"] = 2, ["sync.h"] = 2, ["thread.h"] = 2,
  ["io.h"] = 3, ["stream.h"] = 3, ["tls.h"] = 3, ["fs.h"] = 3,
  ["http.h"] = 4, ["http_parse.h"] = 4, ["http_server.h"] = 4,
}
local names = {[0] = "context", "scheduler", "primitives", "I/O", "HTTP"}

-- each C file's layer (ARCHITECTURE.md); a new file is added here
local file_layer = {
  [0] = {"context", "error", "signame"},
  {"sched", "life", "wait", "waitq", "task", "timer", "sleep_until", "cscope", "deadline", "scope", "tcontext", "trace", "debug", "loop",
   "interrupt", "watchdog"},
  {"combinators", "channel", "queue", "select", "sync", "copy", "thread",
   "worker", "wrap"},
  {"net", "stream", "stream_read", "stream_write", "stdio", "server", "tcp", "workers",
   "pipe", "dns", "fs", "fs_chain", "file", "signal", "process", "tls", "udp",
   "tls_conf", "tls_lua", "connect", "stream_send"},
  {"http_parse", "http", "http_server", "http_conn", "http_respond", "http_scope", "ws"},
}
local layer_of_file = {}
for l = 0, 4 do
  for _, name in ipairs(file_layer[l]) do layer_of_file[name] = l end
end

-- the layer of each file: the highest of what it includes (a header: its own)
local function includes(path)
  local list = {}
  for name in read(path):gmatch('#include "([^"]+)"') do list[#list + 1] = name end
  return list
end

describe("the layers", function()
  it("every casync header has a layer", function()
    for _, path in ipairs(src_files("h")) do
      local name = path:match("[^/]+$")
      assert.is_not_nil(layer_of[name], path .. " has no layer in spec/layers_spec.lua")
    end
  end)

  it("a header includes only headers of its own layer or below", function()
    for _, path in ipairs(src_files("h")) do
      local own = layer_of[path:match("[^/]+$")]
      for _, inc in ipairs(includes(path)) do
        local l = layer_of[inc]
        assert.is_not_nil(l, path .. " includes an unknown header " .. inc)
        assert.is_true(l <= own, ("%s (%s) includes %s (%s)"):format(
          path, names[own], inc, names[l]))
      end
    end
  end)

  it("a C file includes headers of its own layer or below, so it calls nothing above it",
     function()
    for _, path in ipairs(src_files("c")) do
      local top = path:match("module%.c$") or path:match("runner[_%w]*%.c$") or
                  path:match("preload%.c$")
      local layers = {}
      for _, inc in ipairs(includes(path)) do
        local l = layer_of[inc]
        assert.is_not_nil(l, path .. " includes an unknown header " .. inc)
        layers[l] = true
      end
      if not top then
        local name = path:match("([^/]+)%.c$")
        local own = layer_of_file[name] or
                    -- a file named after its layer's prefix (fs_*, http_*)
                    layer_of_file[name:match("^([^_]+)_")]
        assert.is_not_nil(own, path .. " has no layer in spec/layers_spec.lua")
        for l in pairs(layers) do
          assert.is_true(l <= own, ("%s (%s) includes a header of %s"):format(
            path, names[own], names[l]))
        end
      end
    end
  end)

  it("the C sources are laid out as .clang-format says (clang-format -i src/*.[ch] fixes them)",
     function()
    if os.execute("command -v clang-format >/dev/null") ~= true then
      pending("clang-format is not installed (scripts/deps.sh installs it)")
      return
    end
    local off = {}
    for _, ext in ipairs({"h", "c"}) do
      for _, path in ipairs(src_files(ext)) do
        local p = io.popen("clang-format --style=file " .. path)
        local formatted = p:read("a")
        p:close()
        if formatted ~= read(path) then off[#off + 1] = path end
      end
    end
    assert(#off == 0, "not as clang-format lays them out: " .. table.concat(off, " "))
  end)
end)
