-- lua/casync/url.lua: URLs and queries under casync.http, checked against
-- RFC 3986's own examples (section 5.4) and by round trips.  Its public
-- faces (casync.http.parse_url, resolve, escape, ...) and their argument
-- checks are in spec/http_args_spec.lua.
local url = require "casync.url"
local casync = require "casync"

describe("casync.url", function()
  local base = "http://a/b/c/d;p?q"

  it("resolves RFC 3986's normal examples (5.4.1)", function()
    local cases = {
      ["g:h"] = "g:h", ["g"] = "http://a/b/c/g", ["./g"] = "http://a/b/c/g",
      ["g/"] = "http://a/b/c/g/", ["/g"] = "http://a/g", ["//g"] = "http://g",
      ["?y"] = "http://a/b/c/d;p?y", ["g?y"] = "http://a/b/c/g?y",
      ["#s"] = "http://a/b/c/d;p?q#s", ["g#s"] = "http://a/b/c/g#s",
      ["g?y#s"] = "http://a/b/c/g?y#s", [";x"] = "http://a/b/c/;x",
      ["g;x"] = "http://a/b/c/g;x", ["g;x?y#s"] = "http://a/b/c/g;x?y#s",
      [""] = "http://a/b/c/d;p?q", ["."] = "http://a/b/c/",
      ["./"] = "http://a/b/c/", [".."] = "http://a/b/", ["../"] = "http://a/b/",
      ["../g"] = "http://a/b/g", ["../.."] = "http://a/", ["../../"] = "http://a/",
      ["../../g"] = "http://a/g",
    }
    for ref, want in pairs(cases) do
      assert.equals(want, url.resolve(base, ref), "reference " .. ref)
    end
  end)

  it("resolves RFC 3986's abnormal examples (5.4.2)", function()
    local cases = {
      ["../../../g"] = "http://a/g", ["../../../../g"] = "http://a/g",
      ["/./g"] = "http://a/g", ["/../g"] = "http://a/g",
      ["g."] = "http://a/b/c/g.", [".g"] = "http://a/b/c/.g",
      ["g.."] = "http://a/b/c/g..", ["..g"] = "http://a/b/c/..g",
      ["./../g"] = "http://a/b/g", ["./g/."] = "http://a/b/c/g/",
      ["g/./h"] = "http://a/b/c/g/h", ["g/../h"] = "http://a/b/c/h",
      ["g;x=1/./y"] = "http://a/b/c/g;x=1/y", ["g;x=1/../y"] = "http://a/b/c/y",
      ["g?y/./x"] = "http://a/b/c/g?y/./x", ["g?y/../x"] = "http://a/b/c/g?y/../x",
      ["g#s/./x"] = "http://a/b/c/g#s/./x", ["g#s/../x"] = "http://a/b/c/g#s/../x",
      ["http:g"] = "http:g",
    }
    for ref, want in pairs(cases) do
      assert.equals(want, url.resolve(base, ref), "reference " .. ref)
    end
  end)

  it("splits an absolute URL into its parts, and refuses what is not one", function()
    assert.same({scheme = "https", userinfo = "u:p", host = "::1", port = 8443,
                 path = "/a%20b", query = "x=1", fragment = "f"},
                url.parse_url("HTTPS://u:p@[::1]:8443/a%20b?x=1#f"))
    assert.same({scheme = "http", host = "example.com"}, url.parse_url("http://example.com"))
    for _, bad in ipairs({"example.com/x", "http://", "http://h:99999/", "http://h:/",
                          "/just/a/path", "http://[::1/"}) do
      local u, err = url.parse_url(bad)
      assert.is_nil(u, bad)
      assert.equals(("invalid URL '%s'"):format(bad), err)
    end
  end)

  it("percent-encodes every byte but the unreserved ones, and decodes back", function()
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    all = table.concat(all)
    local e = url.escape(all)
    assert.falsy(e:find("[^%w%-%._~%%]"))
    assert.equals(all, url.unescape(e))
    assert.equals("a b+", url.unescape("a+b%2B"))
    assert.equals("caf%C3%A9%20%26", url.escape("café &"))
  end)

  it("encodes a query in key order, and parses it back", function()
    local t = {b = "x y", a = 1, ["k&="] = "v=&"}
    local q = url.encode_query(t)
    assert.equals("a=1&b=x%20y&k%26%3D=v%3D%26", q)
    assert.same({a = "1", b = "x y", ["k&="] = "v=&"}, url.parse_query(q))
    assert.same({a = "", b = "2"}, url.parse_query("a&b=1;b=2"))
  end)

  it("makes a request target a server accepts: raw spaces, controls and non-ASCII encoded, %XX kept",
     function()
    local function parts(path, query) return {scheme = "http", host = "h", path = path, query = query} end
    assert.equals("/", url.target_of(parts()))
    assert.equals("/a%20b/%C3%A9%22?q={}%20x%25", url.target_of(parts("/a b/é\"", "q={} x%25")))
    -- a query may hold { and } as browsers send them; a path may not
    assert.equals("/%7B?{", url.target_of(parts("/{", "{")))
  end)

  it("names an origin with its default port", function()
    assert.equals("https://example.com:443", url.origin_of(url.parse_url("https://EXAMPLE.com/x")))
    assert.equals("http://h:8080", url.origin_of(url.parse_url("http://h:8080")))
  end)

  it("gives a bad argument error for bad input, naming the function", function()
    local good = {
      escape = {"a b"}, unescape = {"a%20b"}, parse_query = {"a=1"},
      encode_query = {{a = 1}}, parse_url = {"http://h/"}, resolve = {"http://h/a", "b"},
      target_of = {{scheme = "http", host = "h", path = "/"}},
      origin_of = {{scheme = "http", host = "h"}},
    }
    for name, args in pairs(good) do
      helper.assert_sweep(name, url[name], function()
        local a = {n = #args}
        for i, v in ipairs(args) do a[i] = type(v) == "table" and {table.unpack(v)} or v end
        for i, v in ipairs(args) do
          if type(v) == "table" then for k, x in pairs(v) do a[i][k] = x end end
        end
        return a
      end, type(args[1]) == "table" and {fields = {[1] = {"scheme", "host", "path", "query"}}} or nil)
    end
    local ok, err = pcall(url.parse_url, 42)
    assert.is_false(ok)
    assert.matches("bad argument #1 to '[%w_.]*parse_url' %(string expected, got number%)", err)
    assert.matches("bad argument #1 to '[%w_.]*origin_of' %(URL parts with a scheme and a host expected%)",
                   select(2, pcall(function() return url.origin_of({}) end)))
  end)
end)

