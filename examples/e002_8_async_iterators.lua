-- Seed 002 "Async Programming: Complete Guide", section "Async Iterators",
-- example E002.8: fetchPages (a paged producer that suspends between
-- pages) and streamEvents (an endless event stream, closed in `finally`),
-- both consumed with a plain for loop.
--
-- Lua needs no `async function*` and no `for await`: a for loop's iterator
-- may itself suspend.  Two ways to write the producer:
--   * fetch_pages: a pull iterator, a closure that fetches the next page
--     when the loop asks for it;
--   * stream_events: a producer task pushing into a channel, and the loop
--     reading ch:iter().  The iterator's fourth value is a to-be-closed
--     variable, Lua's `finally` for loops: breaking out of the loop closes
--     the event source (cancels the producer task).
-- The network is faked with sleeps: 0.05 s per page, events every 0.02 s.
local casync = require "casync"

local PAGES = {{"a", "b", "c"}, {"d", "e", "f"}, {"g", "h"}, {}}

local fetched = 0
local function fetch(url) -- fetch(`${baseUrl}?page=${page}`).json()
  casync.sleep(0.05)
  fetched = fetched + 1
  local page = tonumber(url:match("page=(%d+)"))
  return PAGES[page] or {}
end

-- async function* fetchPages(baseUrl)
local function fetch_pages(base_url)
  local page, has_more = 1, true
  return function()
    if not has_more then return nil end
    local data = fetch(("%s?page=%d"):format(base_url, page))
    if #data == 0 then
      has_more = false
      return nil
    end
    page = page + 1
    return data
  end
end

-- async function processAllPages()
local function process_all_pages()
  local t0, pages, items = casync.now(), 0, 0
  for page in fetch_pages("https://api.example.com/items") do
    print(("Processing %d items (page %d, at %.2fs)"):format(
      #page, pages + 1, casync.now() - t0))
    pages, items = pages + 1, items + #page
  end
  print(("All pages: %d pages, %d items, %d fetches in %.2fs"):format(
    pages, items, fetched, casync.now() - t0))
end

-- An EventSource stand-in: a task that produces events forever.
local source_open = false
local function event_source(ch)
  source_open = true
  local ok, err = pcall(function()
    local n = 0
    while true do
      casync.sleep(0.02) -- eventSource.onmessage
      n = n + 1
      ch:send(('{"id": %d, "type": "%s"}'):format(n, n % 2 == 0 and "tick" or "tock"))
    end
  end)
  source_open = false -- eventSource.close()
  if not ok then error(err, 0) end
end

-- async function* streamEvents(): the iterator, its state, and a closing
-- value that stops the source when the loop ends or breaks.
local function stream_events()
  local ch = casync.channel()
  local producer = casync.spawn(event_source, ch)
  local closer = setmetatable({}, {__close = function()
    producer:cancel()
    pcall(producer.wait, producer) -- the finally block runs to its end
  end})
  local next_event = ch:iter()
  return function()
    local raw = next_event(ch)
    if raw == nil then return nil end
    local id, kind = raw:match('"id": (%d+), "type": "(%a+)"') -- JSON.parse
    return {id = tonumber(id), type = kind}
  end, nil, nil, closer
end

local function main()
  process_all_pages()

  local t0 = casync.now()
  for event in stream_events() do
    print(("event %d: %s at %.2fs"):format(event.id, event.type, casync.now() - t0))
    if event.id == 5 then break end
  end
  print(("Stopped after 5 events; event source closed: %s"):format(
    tostring(not source_open)))
end

casync.run(main)
