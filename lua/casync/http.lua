-- casync.http: an HTTP/1.1 client and server, and WebSocket on both.
--
-- The server (casync.http.serve) is C (src/http_server.c and its two
-- companions): parsing, the request table, the answer's serialization and
-- the writes; only the handler is Lua.  The client is written here on
-- casync.tcp streams and the C parser object (casync.core.http.parser, on
-- llhttp), with a small keep-alive pool per host.  WebSocket is
-- lua/casync/websocket.lua.  JSON goes through Debian's lua-cjson.
-- https goes through casync.tls (the TLS layer inside casync streams).
-- Not here: HTTP/2, proxies, a cookie jar, compression.
local core = require "casync.core"
local cjson = require "cjson"
local argcheck = require "casync.argcheck"
local urls = require "casync.url"

local C = core.http
local now, new_error = core.now, core.new_error
local ctx_get, doing, trace_span = core.context.get, core._doing, core._trace_span
local tcp_connect = core.tcp.connect
local tls_connect = core.tls and core.tls.connect
local core_check_task = C._check_task
local escape, unescape = urls.escape, urls.unescape
local parse_query, encode_query = urls.parse_query, urls.encode_query
local parse_url, resolve = urls.parse_url, urls.resolve
local target_of, origin_of = urls.target_of, urls.origin_of

-- Raises the core's "fname: must be called inside a task" (and a pending
-- cancellation) at the line that called the public function `level`
-- frames up from here.
local function check_task(fname, level)
  local ok, err = pcall(core_check_task, fname)
  if not ok then error(err, (level or 2) + 1) end
end

local http = {}

local DEFAULT_TIMEOUT = 30     -- seconds for a whole request
local MAX_RESPONSE_BODY = 64 * 1024 * 1024
local MAX_LIMIT = 0x7fffffff
local USER_AGENT = "casync/" .. core.version
local BIG_BODY = 64 * 1024     -- larger bodies are sent while the answer is read

---------------------------------------------------------------- arguments

local argerror, typeerror = argcheck.argerror, argcheck.typeerror
local check_string = argcheck.check_string

local function opt_table(v, i, level)
  if v ~= nil and type(v) ~= "table" then
    typeerror(i, "table", v, level + 1)
  end
  return v
end

-- opts[field] as seconds: a number, not NaN, not negative (nil: def).
local function opt_seconds(opts, field, i, level, def)
  local v = opts[field]
  if v == nil then return def end
  if type(v) ~= "number" or v ~= v or v < 0 then
    argerror(i, ("opts.%s must be a non-negative number"):format(field),
             level + 1)
  end
  return v
end

-- opts[field] as an integer in lo..hi (nil: def).
local function opt_int(opts, field, lo, hi, i, level, def)
  local v = opts[field]
  if v == nil then return def end
  if math.type(v) ~= "integer" or v < lo or v > hi then
    argerror(i, ("opts.%s must be an integer in %d..%d"):format(field, lo, hi),
             level + 1)
  end
  return v
end

local function opt_boolean(opts, field, i, level)
  local v = opts[field]
  if v ~= nil and type(v) ~= "boolean" then
    argerror(i, ("opts.%s must be a boolean"):format(field), level + 1)
  end
  return v
end

---------------------------------------------------------------- helpers

-- http.unescape(s) -> s with "%41" as "A" and "+" as " "
function http.unescape(s)
  return unescape(check_string(s, 1, 2))
end

-- http.escape(s) -> s with every byte but letters, digits and -._~ as %XX
function http.escape(s)
  if type(s) ~= "string" and type(s) ~= "number" then
    typeerror(1, "string", s, 2)
  end
  return escape(s)
end

-- http.parse_query(q) -> {a = "1", b = "x y"} from "a=1&b=x%20y" (a repeated
-- key: the last wins; nil: an empty table)
function http.parse_query(q)
  if q ~= nil then check_string(q, 1, 2) end
  return parse_query(q or "")
end

-- http.encode_query(t) -> "a=1&b=x%20y" from {a = 1, b = "x y"} (keys
-- sorted, so it is stable)
function http.encode_query(t)
  if type(t) ~= "table" then typeerror(1, "table", t, 2) end
  return encode_query(t)
end

local function json_decode(body)
  local ok, v = pcall(cjson.decode, body)
  if ok then return v end
  return nil, new_error("json", "invalid JSON: " .. tostring(v))
end

-- http.json_encode(value) -> JSON text (lua-cjson)
http.json_encode = cjson.encode
-- http.json_decode(text) -> value | nil, err (kind "json")
function http.json_decode(text)
  check_string(text, 1, 2)
  return json_decode(text)
end
http.null = cjson.null

-- http.parse_url(url) -> {scheme=, host=, port=, path=, query=,
-- fragment=, userinfo=} | nil, message: the parts of an absolute URL
function http.parse_url(url)
  return parse_url(check_string(url, 1, 2))
end

-- http.resolve(base, ref) -> the absolute URL ref names, relative to base
function http.resolve(base, ref)
  return resolve(check_string(base, 1, 2), check_string(ref, 2, 2))
end

---------------------------------------------------------------- server

-- The request table's metatable: req.query is parsed on first use,
-- req:json() decodes the body, req:websocket() takes the connection for a
-- WebSocket; the server leaves out req.version when it is "1.1" and
-- req.body when it is "" (fewer fields to set per request).
local Request = {version = "1.1", body = ""}

-- req:json() -> the decoded body | nil, err (kind "json")
function Request.json(req)
  if type(req) ~= "table" then typeerror(1, "table", req, 2) end
  return json_decode(req.body)
end

-- req:websocket([opts]) -> ws | nil, err: answers the request's WebSocket
-- upgrade (RFC 6455) and returns the connection as a WebSocket (see
-- lua/casync/websocket.lua); it closes when the handler returns
function Request.websocket(req, opts)
  if type(req) ~= "table" then typeerror(1, "table", req, 2) end
  opt_table(opts, 2, 2)
  return require("casync.websocket").accept(req, opts, C._upgrade)
end

local request_meta = {
  __index = function(req, k)
    if k == "query" then
      local q = req.target:match("%?([^#]*)")
      local t = parse_query(q or "")
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

-- A pool of idle keep-alive connections, per "host:port".
local Pool = {}
Pool.__index = Pool

local function new_pool(max_idle, idle_timeout)
  return setmetatable({idle = {}, max_idle = max_idle or 8,
                       idle_timeout = idle_timeout or 4}, Pool)
end

-- A connection idle for less than idle_timeout (the servers' keep-alive
-- timeout is commonly 5 s) that the server has not closed meanwhile, or
-- nil.  A connection the server closed (or sent bytes on) while it sat
-- idle is dropped here, before anything is sent on it, so any request may
-- take the next one.
function Pool:get(key)
  local list = self.idle[key]
  while list and #list > 0 do
    local e = table.remove(list)
    if not e.s:closed() and now() - e.t < self.idle_timeout then
      local data, err = e.s:read(nil, 0) -- does not wait
      if data == nil and err and err.kind == "timeout" then return e.s end
    end
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
Response.__name = "casync.HttpResponse"

-- response:json() -> the decoded body | nil, err (kind "json")
function Response:json()
  if getmetatable(self) ~= Response then
    typeerror(1, "casync.HttpResponse", self, 2)
  end
  return json_decode(self.body)
end

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

-- Sends the request and reads its answer.  A large or streamed body is
-- sent from a task of its own while this one reads, so a server that
-- answers early (413 during an upload) and closes is heard: its answer is
-- returned, not the broken pipe.  Returns as receive, the connection
-- unusable when the answer came before the body was sent.
local function exchange(s, r, head)
  local body = r.body
  if not (type(body) == "function" or
          (type(body) == "string" and #body > BIG_BODY)) then
    local ok, err, fresh = send(s, head, body, r.deadline)
    if not ok then return nil, err, fresh end
    return receive(s, r.method, r.deadline, r.max_body)
  end
  local sender <close> = setmetatable({t = core.spawn(send, s, head, body,
                                                      r.deadline)},
    {__close = function(g)
      if not g.t:done() then
        g.t:cancel()
        pcall(g.t.wait, g.t)
      end
    end})
  local msg, err, fresh = receive(s, r.method, r.deadline, r.max_body)
  local t = sender.t
  if msg then
    if not t:done() then msg.keep_alive = false end -- the body was cut short
    return msg
  end
  if t:done() and not t:error() then
    local ok, serr, sfresh = t:result()
    if not ok then return nil, serr, sfresh and fresh end
  end
  return nil, err, fresh
end

local REQUEST_FIELDS = {
  url = true, method = true, headers = true, body = true, json = true,
  query = true, timeout = true, max_redirects = true, max_body_size = true,
  keep_alive = true, retry = true, forward_request_id = true,
}

-- The checked options of a request (argument i of the function `level`
-- frames up): r.method, r.url, r.body, r.json, r.headers (a list of
-- {name, lowercase name, value}) ...
-- The TLS settings as a string, part of a pooled connection's key: a
-- connection is reused only by requests with the same settings (one made
-- with verify = false or a private CA never serves a request that asked
-- for the defaults).  Values that are neither strings, numbers, booleans
-- nor lists of them make the key unique.
local function tls_value(v)
  local t = type(v)
  if t == "string" or t == "number" or t == "boolean" then
    return t:sub(1, 1) .. tostring(v)
  elseif t == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = tls_value(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return tostring(v) -- a table of its own, a function: its address
end

local function tls_key(tls)
  if tls == nil then return "" end
  local keys = {}
  for k in pairs(tls) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. tls_value(tls[k]) end
  return "#" .. table.concat(keys, ";")
end

local function prepare(opts, i, level)
  if type(opts) ~= "table" then typeerror(i, "table", opts, level + 1) end
  local r = {url = opts.url, body = opts.body, json = false}
  if type(r.url) ~= "string" then
    argerror(i, "opts.url must be a string", level + 1)
  end
  if not parse_url(r.url) then
    argerror(i, ("invalid URL '%s'"):format(r.url), level + 1)
  end
  if opts.query ~= nil then
    if type(opts.query) ~= "table" then
      argerror(i, "opts.query must be a table", level + 1)
    end
    r.url = r.url .. (r.url:find("?", 1, true) and "&" or "?") ..
            encode_query(opts.query)
  end
  if opts.json ~= nil then
    local ok, text = pcall(cjson.encode, opts.json)
    if not ok then
      argerror(i, "opts.json: " .. tostring(text), level + 1)
    end
    r.body, r.json = text, true
  end
  local bt = type(r.body)
  if r.body ~= nil and bt ~= "string" and bt ~= "function" then
    argerror(i, "opts.body must be a string, a function (chunks) or nil",
             level + 1)
  end
  local method = opts.method
  if method == nil then method = r.body ~= nil and "POST" or "GET" end
  if type(method) ~= "string" or not method:match(NAME) then
    argerror(i, ("invalid method %q"):format(tostring(method)), level + 1)
  end
  r.method = method:upper()
  r.timeout = opt_seconds(opts, "timeout", i, level + 1, DEFAULT_TIMEOUT)
  r.deadline = now() + r.timeout
  r.max_redirects = opt_int(opts, "max_redirects", 0, MAX_LIMIT, i,
                            level + 1, 5)
  r.max_body = opt_int(opts, "max_body_size", 1, MAX_LIMIT, i, level + 1,
                       MAX_RESPONSE_BODY)
  r.keep_alive = opt_boolean(opts, "keep_alive", i, level + 1) ~= false
  if opts.tls ~= nil and type(opts.tls) ~= "table" then
    argerror(i, "opts.tls must be a table", level + 1)
  end
  r.tls = opts.tls
  r.tls_key = tls_key(opts.tls)
  r.retry = opt_boolean(opts, "retry", i, level + 1)
  -- inside a request handler of casync.http.serve: its id goes along
  if opt_boolean(opts, "forward_request_id", i, level + 1) ~= false then
    local id = ctx_get("request_id")
    if type(id) == "string" and #id <= 128 and id:match("^[%w%-_.:/+=@]+$") then
      r.request_id = id
    end
  end
  local headers = {}
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then
      argerror(i, "opts.headers must be a table", level + 1)
    end
    for k, v in pairs(opts.headers) do
      if type(k) ~= "string" or not k:match(NAME) then
        argerror(i, ("invalid header name %q"):format(tostring(k)), level + 1)
      end
      local lk = k:lower()
      if lk ~= "content-length" and lk ~= "transfer-encoding" then
        for _, x in ipairs(type(v) == "table" and v or {v}) do
          local tx = type(x)
          if tx ~= "string" and tx ~= "number" then
            argerror(i, ("header %q has a %s value"):format(k, tx), level + 1)
          end
          x = tostring(x)
          if x:find("[\r\n%z]") then
            argerror(i, ("invalid value for header %q"):format(k), level + 1)
          end
          headers[#headers + 1] = {k, lk, x}
        end
      end
    end
  end
  r.headers = headers
  return r
end

-- Takes header `lname` (lowercase) out of the request's headers.
local function drop_header(r, lname)
  local kept = {}
  for _, h in ipairs(r.headers) do
    if h[2] ~= lname then kept[#kept + 1] = h end
  end
  r.headers = kept
end

-- The request's head for URL parts u.
local function head_of(r, u)
  local host = u.host:find(":", 1, true) and ("[" .. u.host .. "]") or u.host
  local t = {r.method, " ", target_of(u), " HTTP/1.1\r\n"}
  local have = {}
  for _, h in ipairs(r.headers) do have[h[2]] = true end
  local function add(line) t[#t + 1] = line end
  if not have.host then
    add("Host: " .. host .. (u.port and (":" .. u.port) or "") .. "\r\n")
  end
  if not have["user-agent"] then add("User-Agent: " .. USER_AGENT .. "\r\n") end
  if r.json and not have["content-type"] then
    add("Content-Type: application/json\r\n")
  end
  if type(r.body) == "string" then
    add("Content-Length: " .. #r.body .. "\r\n")
  elseif type(r.body) == "function" then
    add("Transfer-Encoding: chunked\r\n")
  elseif r.method == "POST" or r.method == "PUT" or r.method == "PATCH" then
    add("Content-Length: 0\r\n")
  end
  if not r.keep_alive then add("Connection: close\r\n") end
  if r.request_id and not have["x-request-id"] then
    add("X-Request-Id: " .. r.request_id .. "\r\n")
  end
  for _, h in ipairs(r.headers) do add(h[1] .. ": " .. h[3] .. "\r\n") end
  add("\r\n")
  return table.concat(t)
end

local function timed_out(r, what)
  return new_error("timeout", ("%s %s: timed out after %g s%s")
    :format(r.method, r.url, r.timeout, what or ""), "ETIMEDOUT")
end

-- A new connection to host:port, TLS (casync.tls.connect: the system's
-- CAs, the host name checked, opts.tls's settings) when `secure`.
local function connect(host, port, secure, tls, timeout)
  if not secure then return tcp_connect(host, port, {timeout = timeout}) end
  local o = {}
  for k, v in pairs(tls or {}) do o[k] = v end
  o.timeout = timeout
  return tls_connect(host, port, o)
end

-- One request to r.url over a pooled or new connection: the message, or
-- nil, err.  A pooled connection the server closed while it sat idle is
-- dropped before use (Pool:get); one that dies before any answer came is
-- replaced once, when the request may be repeated.
local function attempt(pool, r, host, port, head, secure)
  local key = (secure and "https://" .. host .. ":" .. port .. r.tls_key
                      or "http://" .. host .. ":" .. port)
  for try = 1, 2 do
    local s, reused = pool:get(key), true
    if not s then
      local cerr
      reused = false
      s, cerr = connect(host, port, secure, r.tls, left(r.deadline))
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
    local msg, err, fresh = exchange(s, r, head)
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
-- what a redirect that turns the request into a GET leaves behind (the
-- fetch standard's request-body headers)
local BODY_HEADERS = {"content-type", "content-encoding", "content-language",
                      "content-location"}

-- While a request is made, its task says so in dumps (casync.dump,
-- task:info().waiting_on: "http GET http://...: read on tcp ..."), and a
-- recording gets its span.
local Doing = {__close = function(d)
  doing(d.prev)
  trace_span("http", d.what, d.t0, now() - d.t0)
end}

-- err with its message naming the request ("GET http://h/x: connect
-- h:80: connection refused", as Go's client says `Get "url": ...`) and
-- err.url set, unless it names it already.
local function named(err, r)
  if type(err) == "table" and type(err.message) == "string" then
    local what = r.method .. " " .. r.url
    if err.message:sub(1, #what + 1) ~= what .. ":" then
      err.message = what .. ": " .. err.message
    end
    err.url = r.url
  end
  return err
end

local function do_request(pool, r, fname, level)
  check_task(fname, level + 1)
  local what = r.method .. " " .. r.url
  local _ <close> = setmetatable({prev = doing("http " .. what), what = what,
                                  t0 = now()}, Doing)
  local redirects = 0
  local origin
  while true do
    local u = parse_url(r.url)
    if not u then
      return nil, new_error("http", ("invalid URL '%s'"):format(r.url))
    end
    local secure = u.scheme == "https"
    if not secure and u.scheme ~= "http" then
      return nil, new_error("unsupported", ("%s URLs are not supported"):
                                           format(u.scheme))
    end
    local o = origin_of(u)
    if origin and o ~= origin then
      -- credentials stay with the origin they were meant for (RFC 9110
      -- 15.4; curl, Go, fetch and aiohttp do the same)
      drop_header(r, "authorization")
      drop_header(r, "cookie")
      drop_header(r, "proxy-authorization")
    end
    origin = o
    local msg, err = attempt(pool, r, u.host, u.port or (secure and 443 or 80),
                             head_of(r, u), secure)
    if not msg then return nil, named(err, r) end
    local status, loc = msg.status, msg.headers.location
    if not (loc and REDIRECT[status] and redirects < r.max_redirects) then
      msg.ok = status >= 200 and status < 300
      msg.url = r.url
      msg.redirects = redirects
      msg.keep_alive, msg.upgrade, msg.chunked = nil, nil, nil
      return setmetatable(msg, Response)
    end
    redirects = redirects + 1
    r.url = resolve(r.url, loc)
    if status == 303 or ((status == 301 or status == 302) and
                         r.method == "POST") then
      r.method = r.method == "HEAD" and "HEAD" or "GET"
      r.body, r.json = nil, false
      for _, h in ipairs(BODY_HEADERS) do drop_header(r, h) end
    elseif type(r.body) == "function" then
      return nil, new_error("http", "cannot repeat a streamed body for a " ..
                                    "redirect")
    end
  end
end

local default_pool = new_pool()

-- Copies opts (argument i, a table or nil) for the shorthands.
local function copy_opts(opts, i, level)
  local o = {}
  if opts ~= nil then
    if type(opts) ~= "table" then typeerror(i, "table", opts, level + 1) end
    for k, v in pairs(opts) do o[k] = v end
  end
  return o
end

-- casync.http.request{method=, url=, headers=, body=, json=, query=,
-- timeout=, max_redirects=, max_body_size=, keep_alive=, retry=} ->
-- response {status=, ok=, reason=, headers=, body=, url=, json()} | nil, err
function http.request(opts)
  local r = prepare(opts, 1, 2)
  local res, err = do_request(default_pool, r, "request", 2)
  return res, err
end

-- casync.http.get(url [, opts]) -> response | nil, err
function http.get(url, opts)
  check_string(url, 1, 2)
  local o = copy_opts(opts, 2, 2)
  o.url, o.method = url, "GET"
  local r = prepare(o, 2, 2)
  local res, err = do_request(default_pool, r, "get", 2)
  return res, err
end

-- casync.http.post(url, body_or_opts [, opts]) -> response | nil, err
function http.post(url, body, opts)
  check_string(url, 1, 2)
  local bt = type(body)
  local oi = 3
  if bt == "table" and opts == nil then opts, body, oi = body, nil, 2
  elseif body ~= nil and bt ~= "string" and bt ~= "function" then
    typeerror(2, "string, function or table", body, 2)
  end
  local o = copy_opts(opts, oi, 2)
  o.url, o.method = url, "POST"
  if body ~= nil then o.body = body end
  local r = prepare(o, oi, 2)
  local res, err = do_request(default_pool, r, "post", 2)
  return res, err
end

-- casync.http.close_idle() -> how many idle keep-alive connections were
-- closed (the default pool's)
function http.close_idle() return default_pool:close() end

-- A session, as aiohttp's ClientSession: its own pool, a base URL,
-- default headers and timeout.  `local s <close> = casync.http.session{...}`.
local Session = {}
Session.__index = Session
Session.__name = "casync.HttpSession"
Session.__close = function(self) self.pool:close() end

local SESSION_FIELDS = {base_url = true, headers = true, timeout = true,
                        max_idle = true, idle_timeout = true, tls = true}

-- casync.http.session([{base_url=, headers=, timeout=, max_idle=,
-- idle_timeout=, tls=}]) -> session with its own keep-alive pool (its tls
-- settings for every request that does not give its own)
function http.session(opts)
  opt_table(opts, 1, 2)
  opts = opts or {}
  if opts.base_url ~= nil and type(opts.base_url) ~= "string" then
    argerror(1, "opts.base_url must be a string", 2)
  end
  if opts.headers ~= nil and type(opts.headers) ~= "table" then
    argerror(1, "opts.headers must be a table", 2)
  end
  if opts.tls ~= nil and type(opts.tls) ~= "table" then
    argerror(1, "opts.tls must be a table", 2)
  end
  for k in pairs(opts) do
    if not SESSION_FIELDS[k] then
      argerror(1, ("unknown option '%s'"):format(tostring(k)), 2)
    end
  end
  local timeout = opt_seconds(opts, "timeout", 1, 2)
  local max_idle = opt_int(opts, "max_idle", 0, MAX_LIMIT, 1, 2)
  local idle_timeout = opt_seconds(opts, "idle_timeout", 1, 2)
  return setmetatable({pool = new_pool(max_idle, idle_timeout),
                       base_url = opts.base_url, headers = opts.headers,
                       timeout = timeout, tls = opts.tls}, Session)
end

local function check_session(self, level)
  if getmetatable(self) ~= Session then
    typeerror(1, "casync.HttpSession", self, level + 1)
  end
end

-- The request o through session self (argument i was its options).
local function session_request(self, o, i, fname)
  if self.base_url and type(o.url) == "string" and
     not o.url:match("^%a[%w+.-]*://") then
    o.url = self.base_url:gsub("/$", "") .. "/" .. o.url:gsub("^/", "")
  end
  if self.headers then
    local h = {}
    for k, v in pairs(self.headers) do h[k] = v end
    if type(o.headers) == "table" then
      for k, v in pairs(o.headers) do h[k] = v end
      o.headers = h
    elseif o.headers == nil then
      o.headers = h
    end
  end
  if o.timeout == nil then o.timeout = self.timeout end
  if o.tls == nil then o.tls = self.tls end
  local r = prepare(o, i, 3)
  local res, err = do_request(self.pool, r, fname, 3)
  return res, err
end

-- session:request(opts) -> response | nil, err (as http.request)
function Session:request(opts)
  check_session(self, 2)
  if type(opts) ~= "table" then typeerror(2, "table", opts, 2) end
  local o = copy_opts(opts, 2, 2)
  local res, err = session_request(self, o, 2, "request")
  return res, err
end

-- session:get(url [, opts]) -> response | nil, err
function Session:get(url, opts)
  check_session(self, 2)
  check_string(url, 2, 2)
  local o = copy_opts(opts, 3, 2)
  o.url, o.method = url, "GET"
  local res, err = session_request(self, o, 3, "get")
  return res, err
end

-- session:post(url [, opts]) -> response | nil, err
function Session:post(url, opts)
  check_session(self, 2)
  check_string(url, 2, 2)
  local o = copy_opts(opts, 3, 2)
  o.url, o.method = url, "POST"
  local res, err = session_request(self, o, 3, "post")
  return res, err
end

-- session:close() -> how many idle connections it closed
function Session:close()
  check_session(self, 2)
  return self.pool:close()
end

---------------------------------------------------------------- WebSocket

-- casync.http.websocket(url [, opts]) -> ws | nil, err: a WebSocket
-- client connection (RFC 6455) to a ws:// URL (see lua/casync/websocket.lua)
function http.websocket(url, opts)
  check_string(url, 1, 2)
  opt_table(opts, 2, 2)
  check_task("websocket", 2)
  local u, perr = parse_url(url)
  if not u then return nil, new_error("http", perr) end
  if opts and opts.tls ~= nil and type(opts.tls) ~= "table" then
    argerror(2, "opts.tls must be a table", 2)
  end
  local tls = opts and opts.tls
  local ws, err = require("casync.websocket").connect(u, opts or {}, {
    parser = C.parser, target_of = target_of, user_agent = USER_AGENT,
    connect = function(host, port, secure, timeout)
      return connect(host, port, secure, tls, timeout)
    end})
  return ws, err
end

return http
