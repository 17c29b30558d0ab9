-- Seed 002 "Async Programming: Complete Guide", section "Advanced
-- Patterns", example E002.9: a RateLimiter (10 requests per second) in
-- front of fetch, and fetchWithRetry with exponential backoff.
--
-- Both are in the library: casync.rate_limiter(n, per) keeps, like the
-- article's class, the times of the last n requests and waits until the
-- oldest is `per` seconds old, so no window of one second ever holds more
-- than 10 requests; casync.retry(fn, opts) waits base, base*factor, ...
-- between attempts.
--
-- The rate limit is real (10 per second, 25 requests: ~2 s).  The retry
-- delays are scaled down 10x: the article's 1 s, 2 s become 0.1 s, 0.2 s
-- (base = 0.1 instead of 1); the shape 1, 2, 4, ... is the same.
local casync = require "casync"

local BASE = 0.1 -- the article's 1000 ms first delay, scaled down

local t0 = casync.now()
local function at() return casync.now() - t0 end

local function fetch(url) -- stands for the network
  casync.sleep(0.001)
  return {url = url, status = 200}
end

---------------------------------------------------------------------------
-- Rate limiting: const limiter = new RateLimiter(10, 1000)
local limiter = casync.rate_limiter(10, 1)

local times = {} -- when each request was let through

local function fetchWithRateLimit(url)
  limiter:acquire()
  times[#times + 1] = at()
  return fetch(url)
end

local function main()
  local requests = {}
  for i = 1, 25 do -- 25 requests fired at once, from 25 tasks
    requests[i] = casync.spawn(function()
      return fetchWithRateLimit("https://api.example.com/items/" .. i).status
    end)
  end
  casync.gather(requests)
  table.sort(times)

  local per_second = {}
  for _, t in ipairs(times) do
    local s = math.floor(t) + 1
    per_second[s] = (per_second[s] or 0) + 1
  end
  for s = 1, #per_second do
    print(("second %d: %d requests"):format(s, per_second[s] or 0))
  end
  local max_window, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] >= 1 do j = j + 1 end
    max_window = math.max(max_window, i - j + 1)
  end
  print(("%d requests in %.2fs; at most %d in any 1 s window (limit 10)"):format(
    #times, times[#times], max_window))
  -- the first 10 go at once, then 10 per second: N requests need (N-10)/10 s
  print(("measured rate: %.1f requests/s (limit 10)"):format(
    #times / (times[#times] - times[1] + 1)))

  ---------------------------------------------------------------------------
  -- Retry with exponential backoff: fetchWithRetry(url, maxRetries = 3)
  local function flaky_fetch(fails)
    local calls = 0
    return function(url)
      calls = calls + 1
      print(("  attempt %d at %.2fs"):format(calls, at()))
      if calls <= fails then error({kind = "io", message = "503 from " .. url}) end
      return fetch(url)
    end
  end

  local function fetchWithRetry(fetch_fn, url, maxRetries)
    return casync.retry(fetch_fn, {
      attempts = maxRetries or 3,
      base = BASE, factor = 2, -- Math.pow(2, i) * 1000, scaled
      on_retry = function(err, attempt, delay)
        print(("  failed (%s); retrying in %.1fs"):format(err.message, delay))
      end,
    }, url)
  end

  print("fetchWithRetry, failing twice:")
  t0 = casync.now()
  local r = fetchWithRetry(flaky_fetch(2), "https://api.example.com/flaky")
  print(("  succeeded: status %d after %.2fs"):format(r.status, at()))

  print("fetchWithRetry, always failing:")
  t0 = casync.now()
  local ok, err = pcall(fetchWithRetry, flaky_fetch(math.huge), "https://api.example.com/down")
  print(("  gave up after %.2fs: %s (ok=%s)"):format(at(), err.message, tostring(ok)))
end

casync.run(main)
