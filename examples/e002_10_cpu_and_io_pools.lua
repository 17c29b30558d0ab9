-- Seed 002 "Async Programming: Complete Guide", section "Threading vs
-- Async", example E002.10: "Use ProcessPoolExecutor for CPU-bound tasks"
-- (parallel_cpu_work: cpu_intensive_task(10^7) four times, max_workers=4)
-- and "Use ThreadPoolExecutor for I/O-bound tasks" (parallel_io_work:
-- requests.get for ten URLs, max_workers=10).
--
--  1. parallel_cpu_work on threads: casync.thread_pool{size = 4} gives each
--     job a separate Lua state on a real OS thread, so the four sums use
--     every core; timed against the same four calls one after the other
--     (the speed-up is about the number of cores; best of up to three
--     rounds, as other work on the machine may take a core for a while).
--  1b. parallel_cpu_work as the article writes it, on processes:
--     casync.process_pool{size = 4} runs the four calls in four worker
--     processes (each a Lua interpreter of its own), the same speed-up.
--  2. parallel_io_work: ten blocking HTTP GETs (curl, run by each worker
--     thread and waited for, as requests.get would) against a small HTTP
--     server this script runs on its own loop, which answers each after
--     0.1 s.  Ten threads overlap the waits (~0.1 s instead of ~1 s) and
--     the loop serves all ten requests at once meanwhile.
local casync = require "casync"

-- CPU-bound computation.  The sum is kept in a float: Lua integers would
-- wrap around past 2^63 (Python's are unbounded).
local function cpu_intensive_task(n)
  local result = 0.0
  for i = 0, n - 1 do result = result + i * i end
  return result
end

-- 1. CPU work in parallel -----------------------------------------------

local function sequential_cpu_work()
  local results = {}
  for i = 1, 4 do results[i] = cpu_intensive_task(10^7) end
  return results
end

local function parallel_cpu_work()
  local executor <close> = casync.thread_pool{size = 4} -- max_workers=4
  local futures = {}
  for i = 1, 4 do futures[i] = executor:run(cpu_intensive_task, 10^7) end
  return casync.gather(futures) -- [f.result() for f in futures]
end

local function main()
  -- the best of three rounds (as many as fit in 1.5 s): other work on the
  -- machine may take a core for a while
  local seq, par, seq_time, par_time, t0
  local rounds, start = 0, casync.now()
  while rounds < 3 and (rounds == 0 or casync.now() - start < 1.5) do
    rounds = rounds + 1
    t0 = casync.now()
    local s = sequential_cpu_work()
    local st = casync.now() - t0
    t0 = casync.now()
    local p = parallel_cpu_work()
    local pt = casync.now() - t0
    if not seq or pt / st < par_time / seq_time then
      seq, par, seq_time, par_time = s, p, st, pt
    end
  end
  print(("CPU, sequential: 4 x cpu_intensive_task(10^7) = %.6e in %.2fs")
    :format(seq[1], seq_time))
  print(("CPU, 4 threads:  4 x cpu_intensive_task(10^7) = %.6e in %.2fs")
    :format(par[1], par_time))
  -- casync.thread's default pool has one worker per core
  local cores = casync.thread(function() return casync_worker.pool_size end):wait()
  print(("CPU speed-up: %.2fx on %d cores (best of %d rounds); same results: %s"):format(
    seq_time / par_time, cores, rounds, tostring(seq[1] == par[1] and seq[4] == par[4])))

  -- 1b. CPU work on processes (ProcessPoolExecutor) -------------------------

  local function parallel_cpu_work_processes()
    local executor <close> = casync.process_pool{size = 4} -- max_workers=4
    local futures = {}
    for i = 1, 4 do futures[i] = executor:run(cpu_intensive_task, 10^7) end
    return casync.gather(futures)
  end

  local pro, pro_time = nil, math.huge
  rounds, start = 0, casync.now()
  while rounds < 3 and (rounds == 0 or casync.now() - start < 1.5) do
    rounds = rounds + 1
    t0 = casync.now()
    local p = parallel_cpu_work_processes() -- worker start-up included
    local pt = casync.now() - t0
    if pt < pro_time then pro, pro_time = p, pt end
  end
  print(("CPU, 4 processes: 4 x cpu_intensive_task(10^7) = %.6e in %.2fs")
    :format(pro[1], pro_time))
  print(("CPU speed-up (processes): %.2fx; same results: %s"):format(
    seq_time / pro_time, tostring(seq[1] == pro[1] and seq[4] == pro[4])))

  -- 2. blocking I/O on threads ----------------------------------------------

  -- A local HTTP server on this loop: each request is answered after 0.1 s.
  local in_flight, max_in_flight, served = 0, 0, 0
  local server = assert(casync.tcp.listen("127.0.0.1", 0, function(s)
    if not s:read_until("\r\n\r\n") then return end
    in_flight = in_flight + 1
    max_in_flight = math.max(max_in_flight, in_flight)
    casync.sleep(0.1)
    s:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    in_flight = in_flight - 1
    served = served + 1
  end))
  local url = ("http://127.0.0.1:%d/"):format(server:port())

  -- Runs in a worker: blocks its thread until the response is in.
  local function io_bound_task(u)
    local p = io.popen("curl -s -m 10 -o /dev/null -w '%{http_code}' " .. u)
    local status = tonumber(p:read("a"))
    p:close()
    return status
  end

  local function parallel_io_work()
    local urls = {}
    for i = 1, 10 do urls[i] = url end
    local executor <close> = casync.thread_pool{size = 10} -- max_workers=10
    return executor:map(io_bound_task, urls)
  end

  if not os.execute("command -v curl >/dev/null 2>&1") then
    print("I/O: skipped (no curl to make blocking HTTP requests with)")
  else
    t0 = casync.now()
    local one = casync.thread(io_bound_task, url):wait()
    local one_time = casync.now() - t0
    t0 = casync.now()
    local results = parallel_io_work()
    local io_time = casync.now() - t0
    print(("I/O, one request on a thread: status %d in %.2fs"):format(one, one_time))
    print(("I/O, 10 threads: %d requests, statuses %s in %.2fs (one at a time: ~%.1fs)")
      :format(results.n, table.concat(results, ","), io_time, 10 * one_time))
    print(("the loop served %d requests meanwhile, at most %d at once")
      :format(served, max_in_flight))
  end
  server:close()
end

casync.run(main)
