-- casync's rock: `luarocks make --lua-version=5.4 casync-scm-1.rockspec` in
-- the checkout builds it with CMake and installs the module, its Lua front
-- end (with meta.lua, the editors' types) and the casync runner into the
-- rock tree.  Needs Debian's liblua5.4-dev, libuv1-dev, lua-luv-dev,
-- node-llhttp (llhttp's sources, compiled in), libssl-dev and, for
-- casync.http, lua-cjson.
rockspec_format = "3.0"
package = "casync"
version = "scm-1"
source = {
  -- luarocks make builds from this checkout and fetches nothing: the
  -- project has no public repository address yet
  url = "."
}
description = {
  summary = "An async runtime for Lua 5.4 in C: coroutines as tasks on a libuv loop",
  detailed = [[
casync runs Lua coroutines as tasks on a libuv event loop: run, spawn,
sleep, gather, race, wait_for, channels, select, semaphores, locks,
queues, worker threads and processes, TCP and Unix sockets, files, DNS,
HTTP/1.1, signals and luv callbacks as waits.  Any function may suspend
the task it runs in: there is no async keyword.  The scheduler, the
timers, the wait lists and the I/O are C.  Also the casync command, a
Lua 5.4 interpreter that runs a script as the main task.
]],
  license = "MIT",
  labels = {"async", "coroutines", "libuv", "concurrency"},
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  LIBUV = {header = "uv.h"},
  LUV = {header = "lua5.4/luv/luv.h"},
  OPENSSL = {header = "openssl/ssl.h"},
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    CMAKE_INSTALL_BINDIR = "$(BINDIR)",
    CASYNC_INSTALL_LMOD = "$(LUADIR)",
    CASYNC_INSTALL_CMOD = "$(LIBDIR)",
    CASYNC_INSTALL_C_API = "OFF",
    BUILD_TESTING = "OFF",
  },
}
