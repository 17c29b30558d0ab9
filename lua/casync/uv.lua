-- casync.uv: luv's request functions as waits.  Each is luv's function
-- wrapped by casync.wrap: casync.uv.fs_stat(path) suspends the calling task
-- until luv calls back, and returns what the callback got (err, stat), as
-- uv.fs_stat(path, function(err, stat) ... end) would have.  Cancelling the
-- task cancels the luv request (uv.cancel); a result that comes too late is
-- dropped, except that a descriptor or directory opened too late is closed.
--
-- nil when luv (Debian's lua-luv) is not installed.
local core = require "casync.core"

local ok, luv = pcall(require, "luv")
if not ok or type(luv) ~= "table" then return false end

-- name -> the number of arguments before the callback (luv's docs)
local NARGS = {
  fs_close = 1, fs_open = 3, fs_read = 3, fs_unlink = 1, fs_write = 3,
  fs_mkdir = 2, fs_mkdtemp = 1, fs_mkstemp = 1, fs_rmdir = 1, fs_scandir = 1,
  fs_stat = 1, fs_fstat = 1, fs_lstat = 1, fs_rename = 2, fs_fsync = 1,
  fs_fdatasync = 1, fs_ftruncate = 2, fs_sendfile = 4, fs_access = 2,
  fs_chmod = 2, fs_fchmod = 2, fs_utime = 3, fs_futime = 3, fs_lutime = 3,
  fs_link = 2, fs_symlink = 3, fs_readlink = 1, fs_realpath = 1,
  fs_chown = 3, fs_fchown = 3, fs_lchown = 3, fs_copyfile = 3,
  fs_readdir = 1, fs_closedir = 1, fs_statfs = 1,
  getaddrinfo = 3, getnameinfo = 1, random = 2,
}

-- what to do with the results of a request that ended after its task was
-- cancelled: close what it opened
local function close_fd(err, fd) if not err and fd then luv.fs_close(fd) end end
local ON_DROP = {
  fs_open = close_fd,
  fs_mkstemp = close_fd,
  fs_opendir = function(err, dir) if not err and dir then dir:closedir() end end,
}

local M = {}
for name, nargs in pairs(NARGS) do
  if luv[name] then
    M[name] = core.wrap(luv[name], nargs, {name = name, on_drop = ON_DROP[name]})
  end
end

-- fs_opendir(path [, entries]): luv takes the callback second
if luv.fs_opendir then
  local opendir = core.wrap(function(path, entries, cb)
    if type(path) ~= "string" then -- luv would say so from this file
      error(("bad argument #1 to 'fs_opendir' (string expected, got %s)")
        :format(path == nil and "no value" or type(path)), 0)
    end
    return luv.fs_opendir(path, cb, entries)
  end, 2, {name = "fs_opendir", on_drop = ON_DROP.fs_opendir})
  M.fs_opendir = opendir
end

return M
