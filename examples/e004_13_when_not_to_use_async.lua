-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "When NOT to Use Async", example E004.13: calculateTax (fast and
-- synchronous) and hashPassword (CPU-bound) should stay plain functions.
--
-- In casync they stay plain, and so does everything else: there is no async
-- keyword, so there is no function colouring.  checkout() below is a plain
-- function that calls calculateTax and, deep down, lookupTaxRate, which
-- waits on the network (casync.sleep).  Nothing on the way up is marked or
-- changed; called from a task it simply suspends that task, and the same
-- unchanged functions run concurrently under gather.
-- (hashPassword keeps the CPU busy without suspending, so it holds up every
-- other task while it runs; for real password hashing put it on a thread,
-- see E004.5.)
local casync = require "casync"

-- Don't make this async - it's fast and synchronous
local function calculateTax(amount, rate)
  return amount * rate
end

-- Don't make this async - it's CPU-bound (a stand-in for bcrypt.hashSync:
-- FNV-1a, iterated 2^10 times as the "cost factor")
local function hashPassword(password)
  local h = 0xcbf29ce484222325
  for _ = 1, 1 << 10 do
    for i = 1, #password do
      h = (h ~ password:byte(i)) * 0x100000001b3
    end
  end
  return ("%016x"):format(h)
end

-- A plain function that happens to wait on I/O deep down.
local function lookupTaxRate(region)
  casync.sleep(0.1) -- the tax-rate service
  return ({eu = 0.2, us = 0.07})[region]
end

local function priceCart(cart)
  local total = 0
  for _, item in ipairs(cart.items) do total = total + item end
  return total
end

local function checkout(cart)
  local subtotal = priceCart(cart)
  local tax = calculateTax(subtotal, lookupTaxRate(cart.region))
  return subtotal + tax
end

local function main()
  print(("calculateTax(100, 0.2) = %.2f"):format(calculateTax(100, 0.2)))
  print(("hashPassword('hunter2') = %s"):format(hashPassword("hunter2")))

  local eu = {region = "eu", items = {40, 60}}
  local us = {region = "us", items = {100}}

  local t0 = casync.now()
  local a = checkout(eu)
  local b = checkout(us)
  print(("checkout one after the other: %.2f, %.2f in %.2fs"):format(a, b, casync.now() - t0))

  t0 = casync.now()
  a, b = casync.gather(function() return checkout(eu) end,
                       function() return checkout(us) end)
  print(("checkout under gather: %.2f, %.2f in %.2fs (same plain functions, now concurrent)")
    :format(a, b, casync.now() - t0))

  -- The one rule: waiting happens inside a task.  A plain coroutine that casync
  -- does not manage cannot suspend, and says so, naming the function.
  local ok, err = pcall(coroutine.wrap(function() return checkout(eu) end))
  print(("checkout in a plain coroutine: ok=%s, %s"):format(tostring(ok), tostring(err)))
end

casync.run(main)
