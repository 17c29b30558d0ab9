-- casync.http: an HTTP/1.1 client and server.
--
-- The server (casync.http.serve) is C (src/http_server.c): parsing, the
-- request table, the answer's serialization and the writes; only the
-- handler is Lua.  The client is written here on casync.tcp streams and the
-- C parser object (casync.core.http.parser, on Debian's http_parser), with
-- a small keep-alive pool per host.  JSON goes through Debian's lua-cjson.
-- Not here: TLS (https URLs fail with kind "unsupported"), HTTP/2,
-- proxies, cookies, compression.
local core = require "casync.core"
local cjson = require "cjson"

local C = core.http
local now, new_error = core.now, core.new_error
local tcp_connect = core.tcp.connect

local http = {}

local DEFAULT_TIMEOUT = 30     -- seconds for a whole request
local MAX_RESPONSE_BODY = 64 * 1024 * 1024
local USER_AGENT = "casync/" .. core.version

---------------------------------------------------------------- helpers

-- "%41" -> "A", "+" -> " "
function http.unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

function http.escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

-- "a=1&b=x%20y" -> {a = "1", b = "x y"} (a repeated key: the last wins)
function http.parse_query(q)
  local t = {}
  for pair in (q or ""):gmatch("[^&;]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    t[http.unescape(k)] = http.unescape(v)
  end
  return t
end

-- {a = 1, b = "x y"} -> "a=1&b=x%20y" (keys sorted, so it is stable)
function http.encode_query(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for i, k in ipairs(keys) do
    keys[i] = http.escape(k) .. "=" .. http.escape(t[k] == nil and "" or t[k])
  end
  return table.concat(keys, "&")
end

local function json_decode(body)
  local ok, v = pcall(cjson.decode, body)
  if ok then return v end
  return nil, new_error("json", "invalid JSON: " .. tostring(v))
end

http.json_encode = cjson.encode
http.json_decode = json_decode
http.null = cjson.null

---------------------------------------------------------------- server

-- The request table's metatable: req.query is parsed on first use,
-- req:json() decodes the body; the server leaves out req.version when it
-- is "1.1" and req.body when it is "" (fewer fields to set per request).
local Request = {version = "1.1", body = ""}
function Request.json(req) return json_decode(req.body) end
local request_meta = {
  __index = function(req, k)
    if k == "query" then
      local q = req.target:match("%?([^#]*)")
      local t = http.parse_query(q)
      rawset(req, "query", t)
      return t
    end
    return Request[k]
  end,
}
C._setup(request_meta, cjson.encode)

http.serve = C.serve
http._stats = C._stats
http.reason = C.reason

---------------------------------------------------------------- client

local function err_of(kind, fmt, ...)
  return new_error(kind, fmt:format(...))
end

local NAME = "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$"

local function check_header(k, v, level)
  if type(k) ~= "string" or not k:match(NAME) then
    error(("invalid header name %q"):format(tostring(k)), level)
  end
  local vs = tostring(v)
  if vs:find("[\r\n%z]") then
    error(("invalid value for header %q"):format(k), level)
  end
  return vs
end

-- Splits a URI reference into its five parts (RFC 3986 appendix B):
-- scheme, authority, path, query, fragment (nil when absent).
local function split_uri(s)
  local scheme, rest = s:match("^(%a[%w+.-]*):(.*)$")
  if not scheme then rest = s end
  local frag
  local h = rest:find("#", 1, true)
  if h then rest, frag = rest:sub(1, h - 1), rest:sub(h + 1) end
  local query
  local q = rest:find("?", 1, true)
  if q then rest, query = rest:sub(1, q - 1), rest:sub(q + 1) end
  local auth
  if rest:sub(1, 2) == "//" then
    auth, rest = rest:match("^//([^/]*)(.*)$")
  end
  return scheme, auth, rest, query, frag
end

-- parse_url(url) -> {scheme=, host=, port=, path=, query=, fragment=,
-- userinfo=} | nil, message: an absolute http(s)/ws(s) URL
local function parse_url(url)
  local scheme, auth, path, query, frag = split_uri(url)
  if not scheme or not auth or auth == "" then
    return nil, ("invalid URL '%s'"):format(url)
  end
  local u = {scheme = scheme:lower(), query = query, fragment = frag}
  local userinfo, hostport = auth:match("^(.*)@(.*)$")
  u.userinfo = userinfo
  hostport = hostport or auth
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:%[%]]+):?(%d*)$") end
  if not host or host == "" then
    return nil, ("invalid URL '%s'"):format(url)
  end
  u.host = host
  if port ~= "" then
    u.port = tonumber(port)
    if u.port > 65535 then return nil, ("invalid URL '%s'"):format(url) end
  elseif hostport:sub(-1) == ":" then
    return nil, ("invalid URL '%s'"):format(url)
  end
  if path ~= "" then u.path = path end
  return u
end
http.parse_url = parse_url

-- RFC 3986 5.2.4: removes "." and ".." segments.
local function remove_dots(input)
  local out = {}
  while #input > 0 do
    if input:sub(1, 3) == "../" then input = input:sub(4)
    elseif input:sub(1, 2) == "./" then input = input:sub(3)
    elseif input:sub(1, 3) == "/./" then input = input:sub(3)
    elseif input == "/." then input = "/"
    elseif input:sub(1, 4) == "/../" then
      input = input:sub(4)
      out[#out] = nil
    elseif input == "/.." then
      input = "/"
      out[#out] = nil
    elseif input == "." or input == ".." then input = ""
    else
      local seg = input:match("^/?[^/]*")
      out[#out + 1] = seg
      input = input:sub(#seg + 1)
    end
  end
  return table.concat(out)
end

-- Resolves a redirect's Location against the URL it came from (RFC 3986
-- 5.2.2).
local function resolve(base, loc)
  local bs, ba, bp, bq = split_uri(base)
  local rs, ra, rp, rq, rf = split_uri(loc)
  local s, a, p, q
  if rs then
    s, a, p, q = rs, ra, remove_dots(rp), rq
  else
    s = bs
    if ra then
      a, p, q = ra, remove_dots(rp), rq
    else
      a = ba
      if rp == "" then
        p, q = bp, rq or bq
      else
        if rp:sub(1, 1) == "/" then
          p = remove_dots(rp)
        elseif ba and bp == "" then
          p = remove_dots("/" .. rp)
        else
          p = remove_dots((bp:match("^(.*/)") or "") .. rp)
        end
        q = rq
      end
    end
  end
  local t = {s, ":"}
  if a then t[#t + 1] = "//" .. a end
  t[#t + 1] = p
  if q then t[#t + 1] = "?" .. q end
  if rf then t[#t + 1] = "#" .. rf end
  return table.concat(t)
end
http._resolve = resolve

-- A pool of idle keep-alive connections, per "host:port".
local Pool = {}
Pool.__index = Pool

local function new_pool(opts)
  return setmetatable({idle = {}, max_idle = opts.max_idle or 8,
                       idle_timeout = opts.idle_timeout or 4}, Pool)
end

-- A connection idle for less than idle_timeout (the servers' keep-alive
-- timeout is commonly 5 s), or nil.
function Pool:get(key)
  local list = self.idle[key]
  while list and #list > 0 do
    local e = table.remove(list)
    if not e.s:closed() and now() - e.t < self.idle_timeout then return e.s end
    e.s:close()
  end
end

function Pool:put(key, s)
  local list = self.idle[key]
  if not list then
    list = {}
    self.idle[key] = list
  end
  if #list >= self.max_idle then
    s:close()
  else
    list[#list + 1] = {s = s, t = now()}
  end
end

-- Closes the idle connections; returns how many.
function Pool:close()
  local n = 0
  for key, list in pairs(self.idle) do
    for _, e in ipairs(list) do
      e.s:close()
      n = n + 1
    end
    self.idle[key] = nil
  end
  return n
end

local Response = {}
Response.__index = Response

-- response:json() -> the decoded body | nil, err (kind "json")
function Response:json() return json_decode(self.body) end

local function left(deadline)
  if not deadline then return nil end
  local l = deadline - now()
  return l > 0 and l or 0
end

local IDEMPOTENT = {GET = true, HEAD = true, OPTIONS = true, PUT = true,
                    DELETE = true, TRACE = true}

-- Sends the request: the head, then the body (a string, or chunks from an
-- iterator).  Returns true, or nil, err and whether nothing may have
-- reached the server yet.
local function send(s, head, body, deadline)
  local ok, err
  if type(body) == "string" and #body > 0 then
    ok, err = s:write({head, body}, left(deadline))
  else
    ok, err = s:write(head, left(deadline))
  end
  if not ok then return nil, err, true end
  if type(body) ~= "function" then return true end
  while true do -- chunked
    local chunk = body()
    if chunk == nil then break end
    chunk = tostring(chunk)
    if #chunk > 0 then
      ok, err = s:write({("%x\r\n"):format(#chunk), chunk, "\r\n"},
                        left(deadline))
      if not ok then return nil, err, false end
    end
  end
  ok, err = s:write("0\r\n\r\n", left(deadline))
  if not ok then return nil, err, false end
  return true
end

-- Reads the response.  Returns the message, or nil, err and whether nothing
-- came back (a stale keep-alive connection).
local function receive(s, method, deadline, max_body)
  local p = C.parser("response", {max_body_size = max_body})
  p:reset(method == "HEAD")
  local got = false
  while true do
    local data, rerr = s:read(nil, left(deadline))
    if not data then
      if rerr then return nil, rerr, not got end
      local st, perr = p:eof() -- the end of the stream
      if st == "done" then return p:message() end
      if not got then
        return nil, err_of("io", "connection closed before the response"),
               true
      end
      return nil, perr or err_of("http", "the response was cut short")
    end
    got = true
    local i = 1
    while i <= #data do
      local st, used = p:feed(data, i)
      if not st then return nil, used end
      if st ~= "done" then break end
      i = i + used
      local msg = p:message()
      if msg.status >= 200 or msg.status == 101 then
        if i <= #data then s:unread(data:sub(i)) end
        return msg
      end
      p:reset(method == "HEAD") -- 100 Continue and such: the answer follows
    end
  end
end

-- The checked options of a request: r.method, r.url, r.body, r.json,
-- r.extra (the user's header lines), r.have (their lowercase names), ...
local function prepare(opts, level)
  if type(opts) ~= "table" then
    error(("bad argument #1 to 'request' (table expected, got %s)")
      :format(type(opts)), level)
  end
  local r = {url = opts.url, body = opts.body, json = false}
  if type(r.url) ~= "string" then
    error("request: opts.url must be a string", level)
  end
  if opts.query then
    r.url = r.url .. (r.url:find("?", 1, true) and "&" or "?") ..
            http.encode_query(opts.query)
  end
  if opts.json ~= nil then
    r.body, r.json = cjson.encode(opts.json), true
  end
  local bt = type(r.body)
  if r.body ~= nil and bt ~= "string" and bt ~= "function" then
    error("request: opts.body must be a string, a function (chunks) or nil",
          level)
  end
  r.method = (opts.method or (r.body ~= nil and "POST" or "GET")):upper()
  if not r.method:match(NAME) then
    error(("request: invalid method %q"):format(r.method), level)
  end
  r.timeout = opts.timeout or DEFAULT_TIMEOUT
  r.deadline = now() + r.timeout
  r.max_redirects = opts.max_redirects or 5
  r.max_body = opts.max_body_size or MAX_RESPONSE_BODY
  r.keep_alive = opts.keep_alive ~= false
  r.retry = opts.retry
  local extra, have = {}, {}
  for k, v in pairs(opts.headers or {}) do
    local lk = type(k) == "string" and k:lower() or k
    if lk ~= "content-length" and lk ~= "transfer-encoding" then
      for _, x in ipairs(type(v) == "table" and v or {v}) do
        extra[#extra + 1] = k .. ": " .. check_header(k, x, level + 1) .. "\r\n"
      end
      have[lk] = true
    end
  end
  r.extra, r.have = table.concat(extra), have
  return r
end

-- The request's head for URL parts u.
local function head_of(r, u, target)
  local host = u.host:find(":", 1, true) and ("[" .. u.host .. "]") or u.host
  local t = {r.method, " ", target, " HTTP/1.1\r\n"}
  local function add(line) t[#t + 1] = line end
  if not r.have.host then
    add("Host: " .. host .. (u.port and (":" .. u.port) or "") .. "\r\n")
  end
  if not r.have["user-agent"] then
    add("User-Agent: " .. USER_AGENT .. "\r\n")
  end
  if r.json and not r.have["content-type"] then
    add("Content-Type: application/json\r\n")
  end
  if type(r.body) == "string" then
    add("Content-Length: " .. #r.body .. "\r\n")
  elseif type(r.body) == "function" then
    add("Transfer-Encoding: chunked\r\n")
  end
  if not r.keep_alive then add("Connection: close\r\n") end
  add(r.extra)
  add("\r\n")
  return table.concat(t)
end

local function timed_out(r, what)
  return new_error("timeout", ("%s %s: timed out after %gs%s")
    :format(r.method, r.url, r.timeout, what or ""), "ETIMEDOUT")
end

-- One request to r.url over a pooled or new connection: the message, or
-- nil, err.  A pooled connection the server had closed meanwhile is
-- replaced once, when the request may be repeated.
local function attempt(pool, r, host, port, head)
  local key = host .. ":" .. port
  for try = 1, 2 do
    local s, reused = pool:get(key), true
    if not s then
      local cerr
      reused = false
      s, cerr = tcp_connect(host, port, {timeout = left(r.deadline)})
      if not s then
        if cerr.kind == "timeout" then
          return nil, timed_out(r, " (connecting)")
        end
        return nil, cerr
      end
    end
    -- closed unless it goes back to the pool (also on error and cancellation)
    local guard <close> = setmetatable({s = s}, {__close = function(g)
      if g.s then g.s:close() end
    end})
    local ok, err, fresh = send(s, head, r.body, r.deadline)
    local msg
    if ok then
      msg, err, fresh = receive(s, r.method, r.deadline, r.max_body)
    end
    if msg then
      if msg.keep_alive and r.keep_alive and not msg.upgrade then
        guard.s = nil
        pool:put(key, s)
      end
      return msg
    end
    local repeatable = type(r.body) ~= "function" and
                       (IDEMPOTENT[r.method] or r.retry)
    if not (reused and fresh and try == 1 and repeatable) then
      if err.kind == "timeout" then return nil, timed_out(r) end
      return nil, err
    end
  end
end

local REDIRECT = {[301] = true, [302] = true, [303] = true, [307] = true,
                  [308] = true}

local function do_request(pool, opts, level)
  local r = prepare(opts, level + 1)
  local redirects = 0
  while true do
    local u = parse_url(r.url)
    if not u or not u.host then
      error(("request: invalid URL '%s'"):format(r.url), level)
    end
    local scheme = (u.scheme or "http"):lower()
    if scheme ~= "http" then
      return nil, new_error("unsupported", ("%s URLs are not supported " ..
        "(casync.http has no TLS)"):format(scheme))
    end
    local target = (u.path or "/") .. (u.query and ("?" .. u.query) or "")
    local msg, err = attempt(pool, r, u.host, u.port or 80,
                             head_of(r, u, target))
    if not msg then return nil, err end
    local status, loc = msg.status, msg.headers.location
    if not (loc and REDIRECT[status] and redirects < r.max_redirects) then
      msg.ok = status >= 200 and status < 300
      msg.url = r.url
      msg.redirects = redirects
      msg.keep_alive, msg.upgrade = nil, nil
      return setmetatable(msg, Response)
    end
    redirects = redirects + 1
    r.url = resolve(r.url, loc)
    if status == 303 or ((status == 301 or status == 302) and
                         r.method == "POST") then
      r.method = r.method == "HEAD" and "HEAD" or "GET"
      r.body, r.json = nil, false
    elseif type(r.body) == "function" then
      return nil, new_error("http", "cannot repeat a streamed body for a " ..
                                    "redirect")
    end
  end
end

local default_pool = new_pool({})

-- casync.http.request{method=, url=, headers=, body=, json=, query=,
-- timeout=, max_redirects=, max_body_size=, keep_alive=} ->
-- response {status=, ok=, reason=, headers=, body=, url=, json()} | nil, err
function http.request(opts) return do_request(default_pool, opts, 3) end

-- casync.http.get(url [, opts]) -> response | nil, err
function http.get(url, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.url, o.method = url, "GET"
  return do_request(default_pool, o, 3)
end

-- casync.http.post(url, body_or_opts [, opts]) -> response | nil, err
function http.post(url, body, opts)
  local o = {}
  if type(body) == "table" and opts == nil then opts, body = body, nil end
  for k, v in pairs(opts or {}) do o[k] = v end
  o.url, o.method = url, "POST"
  if body ~= nil then o.body = body end
  return do_request(default_pool, o, 3)
end

-- casync.http.close_idle() -> how many idle keep-alive connections were
-- closed (the default pool's)
function http.close_idle() return default_pool:close() end

-- A session, as aiohttp's ClientSession: its own pool, a base URL,
-- default headers and timeout.  `local s <close> = casync.http.session{...}`.
local Session = {}
Session.__index = Session
Session.__close = function(self) self:close() end

function http.session(opts)
  opts = opts or {}
  return setmetatable({pool = new_pool(opts), base_url = opts.base_url,
                       headers = opts.headers, timeout = opts.timeout}, Session)
end

function Session:request(opts)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if self.base_url and o.url and not o.url:match("^%a[%w+.-]*://") then
    o.url = self.base_url:gsub("/$", "") .. "/" .. o.url:gsub("^/", "")
  end
  if self.headers then
    local h = {}
    for k, v in pairs(self.headers) do h[k] = v end
    for k, v in pairs(o.headers or {}) do h[k] = v end
    o.headers = h
  end
  if o.timeout == nil then o.timeout = self.timeout end
  return do_request(self.pool, o, 3)
end

function Session:get(url, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.url, o.method = url, "GET"
  return self:request(o)
end

function Session:post(url, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.url, o.method = url, "POST"
  return self:request(o)
end

function Session:close() return self.pool:close() end

return http
