-- casync.url: URLs and query strings for casync.http and its WebSocket
-- client (RFC 3986): percent-encoding, queries, an absolute URL's parts, a
-- reference resolved against a base, a request's target and origin.
-- casync.http's public functions (escape, parse_url, resolve, ...) are
-- these, with their own names in errors.
local argcheck = require "casync.argcheck"
local argerror, typeerror = argcheck.argerror, argcheck.typeerror
local check_string = argcheck.check_string

local M = {}

-- check_parts(u, level): u must be URL parts with a scheme and a host (as
-- parse_url gives them)
local function check_parts(u, level)
  if type(u) ~= "table" then typeerror(1, "table", u, level + 1) end
  if type(u.host) ~= "string" or type(u.scheme) ~= "string" then
    argerror(1, "URL parts with a scheme and a host expected", level + 1)
  end
  if u.path ~= nil and type(u.path) ~= "string" or
     u.query ~= nil and type(u.query) ~= "string" then
    argerror(1, "u.path and u.query must be strings", level + 1)
  end
  return u
end

-- unescape(s) -> s with "%41" as "A" and "+" as " "
function M.unescape(s)
  s = check_string(s, 1, 2):gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

-- escape(s) -> s with every byte but letters, digits and -._~ as %XX
function M.escape(s)
  if type(s) ~= "string" and type(s) ~= "number" then
    typeerror(1, "string", s, 2)
  end
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

-- parse_query(q) -> {a = "1", b = "x y"} from "a=1&b=x%20y" (a repeated
-- key: the last wins)
function M.parse_query(q)
  check_string(q, 1, 2)
  local t = {}
  for pair in q:gmatch("[^&;]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    t[M.unescape(k)] = M.unescape(v)
  end
  return t
end

-- encode_query(t) -> "a=1&b=x%20y" from {a = 1, b = "x y"} (keys sorted,
-- so it is stable)
function M.encode_query(t)
  if type(t) ~= "table" then typeerror(1, "table", t, 2) end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do
    keys[i] = M.escape(tostring(k)) .. "=" .. M.escape(tostring(t[k]))
  end
  return table.concat(keys, "&")
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
-- userinfo=} | nil, message: the parts of an absolute URL
function M.parse_url(url)
  check_string(url, 1, 2)
  local scheme, auth, path, query, frag = split_uri(url)
  local bad = ("invalid URL '%s'"):format(url)
  if not scheme or not auth or auth == "" then return nil, bad end
  local u = {scheme = scheme:lower(), query = query, fragment = frag}
  local userinfo, hostport = auth:match("^(.*)@(.*)$")
  u.userinfo = userinfo
  hostport = hostport or auth
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:%[%]]+):?(%d*)$") end
  if not host or host == "" then return nil, bad end
  u.host = host
  if port ~= "" then
    u.port = tonumber(port)
    if u.port > 65535 then return nil, bad end
  elseif hostport:sub(-1) == ":" then
    return nil, bad
  end
  if path ~= "" then u.path = path end
  return u
end

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

-- Resolves reference loc against the absolute URL base (RFC 3986 5.2.2),
-- as a redirect's Location is.
function M.resolve(base, loc)
  check_string(base, 1, 2)
  check_string(loc, 2, 2)
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


-- The request target of URL parts u: bytes a URL may not hold raw
-- (controls, space, non-ASCII, "<>`{} and ") percent-encoded, as a
-- browser's fetch does; an existing %XX stays.
function M.target_of(u)
  check_parts(u, 2)
  local function enc(c) return ("%%%02X"):format(c:byte()) end
  local path = (u.path or "/"):gsub('[%z\1-\32"<>`{}\127-\255]', enc)
  if u.query then
    return path .. "?" .. u.query:gsub('[%z\1-\32"<>\127-\255]', enc)
  end
  return path
end

-- "http://host:port", the origin a redirect may leave
function M.origin_of(u)
  check_parts(u, 2)
  return u.scheme .. "://" .. u.host:lower() .. ":" ..
         (u.port or (u.scheme == "https" and 443 or 80))
end

return M
