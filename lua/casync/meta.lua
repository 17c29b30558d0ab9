---@meta casync
-- lua/casync/meta.lua: the types of casync's public API for the Lua
-- Language Server (LuaLS) and other editors.  Never loaded: it is
-- installed beside the module (share/lua/5.4/casync/meta.lua) for editors
-- to read, docs/api.md is generated from it (scripts/apidoc.lua), and
-- spec/annotations_spec.lua checks it against the real module.
--
-- Conventions, which the spec and the generator rely on:
--   * a module or class: `---@class casync.Name` (with its description on
--     `---` lines above) right before `casync.name = {}` (a module table)
--     or `local Name = {}` (the methods of a class of objects);
--   * a function: `---` lines saying what it promises (the first line is
--     the summary), its `---@param` and `---@return` lines, then
--     `function casync.name(...) end`, `function casync.mod.name(...) end`
--     or `function Name:method(...) end`.
-- A function added to casync must be annotated here; the spec names any
-- that is not.

---A number of seconds (a float; sub-millisecond precision).
---@alias casync.seconds number

---casync: an async runtime for Lua 5.4 written in C.  Lua coroutines run
---as tasks on a libuv loop; any function may suspend the task it runs in.
---@class casync
---@field version string the version, "0.1.0"
local casync = {}

-- ================================================================ tasks

---Runs fn(...) as the main task until it ends and returns its results, or re-raises its error.
---Tasks still alive when it ends are cancelled and waited for.  Called in
---the main task of the `casync` runner, it runs fn there, so a script
---ending with `casync.run(main)` runs under lua5.4 and the runner alike.
---@param fn function
---@param ... any arguments for fn
---@return any ... fn's results
function casync.run(fn, ...) end

---Schedules fn(...) as a new task and returns it at once.
---An options table first names the task: `casync.spawn({name = "x"}, fn)`.
---@param fn function|{name: string?}
---@param ... any arguments for fn (after fn when the first is the options table)
---@return casync.Task
function casync.spawn(fn, ...) end

---The running task, or nil outside tasks.
---@return casync.Task?
function casync.current() end

---Runs fn(...) as a task once `seconds` have passed; cancel the task to call it off.
---@param seconds casync.seconds
---@param fn function
---@param ... any
---@return casync.Task
function casync.call_later(seconds, fn, ...) end

---Suspends the calling task for `seconds`; sleep(0) lets every other ready task run first.
---A negative time is 0; NaN is a bad argument.
---@param seconds casync.seconds
function casync.sleep(seconds) end

---The loop's monotonic clock in seconds (a float), read afresh.
---@return casync.seconds
function casync.now() end

---Moves the clock ahead by hand: the timers due fire (with the virtual clock, or to make time pass in a test).
---@param seconds casync.seconds
function casync.advance(seconds) end

---Suspends the calling task until casync.now() >= t; a time in the past lets the other ready tasks run first.
---@param t casync.seconds a time on casync.now()'s clock
function casync.sleep_until(t) end

-- ================================== scopes, deadlines and cancellation

---A scope that owns the tasks spawned in it: `local s <close> = casync.scope()`, or casync.scope(fn, ...) for fn(s, ...)'s results.
---Closing it waits for every task; the first failure cancels the body and
---the rest and is raised unchanged (several: an error of kind "group").
---@param fn? fun(s: casync.Scope, ...): any
---@param ... any
---@return casync.Scope|any
function casync.scope(fn, ...) end

---A deadline for the rest of the block: `local d <close> = casync.timeout(2)`; it then ends with an error of kind "timeout".
---@param seconds casync.seconds? nil: no deadline, only d:cancel()
---@return casync.CancelScope
function casync.timeout(seconds) end

---fn(...)'s results, or an error of kind "timeout" when the deadline cuts it short.
---@param seconds casync.seconds
---@param fn function
---@param ... any
---@return any ...
function casync.fail_after(seconds, fn, ...) end

---true and fn(...)'s results, or false when the deadline cut it short.
---@param seconds casync.seconds
---@param fn function
---@param ... any
---@return boolean ok
---@return any ...
function casync.move_on_after(seconds, fn, ...) end

---The innermost deadline the running task is under (casync.now()'s clock), or nil.
---@return casync.seconds?
function casync.deadline() end

---Runs fn(...) to its end even if the caller is cancelled meanwhile (raised at its next wait); an options table first: {timeout =}.
---@param fn function|{timeout: casync.seconds?}
---@param ... any
---@return any ...
function casync.shield(fn, ...) end

---Raises a pending cancellation, then lets every other ready task run.
function casync.checkpoint() end

-- ========================================================== combinators

---Waits for every task or function (spawned) and returns their first results in order.
---With one array argument, returns an array with field n.  On the first
---error, cancels the others, waits for them to unwind, and raises it.
---@param ... casync.Task|function|(casync.Task|function)[]
---@return any ...
function casync.gather(...) end

---Waits for every task or function; each entry is {ok = true, value = v} or {ok = false, error = e}.
---@param list (casync.Task|function)[]
---@return {ok: boolean, value: any, error: any}[] results with field n
function casync.all_settled(list) end

---The first task or function to end wins (its results or its error); the others are cancelled.
---@param list (casync.Task|function)[]
---@return any ...
function casync.race(list) end

---Waits per opts.return_when and opts.timeout and returns the tasks done and pending; cancels nothing.
---@param list (casync.Task|function)[]
---@param opts? {return_when: "all_completed"|"first_completed"|"first_error"?, timeout: casync.seconds?}
---@return casync.Task[] done
---@return casync.Task[] pending
function casync.wait(list, opts) end

---Returns the task's (or function's) results, or cancels it after `seconds` and raises an error of kind "timeout".
---nil seconds waits without a limit.
---@param task_or_fn casync.Task|function
---@param seconds casync.seconds?
---@return any ...
function casync.wait_for(task_or_fn, seconds) end

-- ============================================= channels, select, queues

---A channel: capacity 0 (default) is an unbuffered rendezvous, n > 0 buffers n values.
---@param capacity? integer
---@return casync.Channel
function casync.channel(capacity) end

---Waits for the first ready case ({ch, "recv"} or {ch, "send", v}); returns its index, and for recv the value and true.
---Several ready: one at random.  nil after `timeout` seconds (0: poll).
---@param cases table[]
---@param timeout? casync.seconds
---@return integer? index
---@return any value
---@return boolean? ok false when a received channel is closed and drained
function casync.select(cases, timeout) end

---A queue: maxsize 0 (default) is unbounded; order "fifo" (default), "lifo" or "priority".
---@param maxsize? integer
---@param order? "fifo"|"lifo"|"priority"
---@return casync.Queue
function casync.queue(maxsize, order) end

-- ====================================================== synchronization

---A semaphore of n permits.
---@param n integer
---@return casync.Semaphore
function casync.semaphore(n) end

---A lock: a semaphore of 1 that only its holder releases.
---@return casync.Lock
function casync.lock() end

---An event, unset.
---@return casync.Event
function casync.event() end

---A condition variable over lock (a new lock by default).
---@param lock? casync.Lock
---@return casync.Condition
function casync.condition(lock) end

-- ========================================================= conveniences

---A sliding-window rate limiter: at most n acquisitions in any `per` seconds (default 1).
---@param n integer
---@param per? casync.seconds
---@return casync.RateLimiter
function casync.rate_limiter(n, per) end

---Calls fn(...) until it succeeds, waiting longer after each failure, and returns its results.
---opts: attempts (3), base (1 s), factor (2), max, jitter (0..1), timeout
---(per attempt), retry_if(err, attempt), on_retry(err, attempt, delay).
---After the last attempt, raises the last error; never retries a cancellation.
---@param fn function
---@param opts? {attempts: integer?, base: number?, factor: number?, max: number?, jitter: number?, timeout: number?, retry_if: function?, on_retry: function?}
---@param ... any arguments for fn
---@return any ...
function casync.retry(fn, opts, ...) end

---Calls fn(item, i) for every item concurrently, at most opts.limit at a time, and returns the first results in order (with n).
---@param fn fun(item: any, i: integer): any
---@param list table
---@param opts? {limit: integer?}
---@return table results
function casync.map(fn, list, opts) end

---Turns a callback-last function into one that suspends the calling task and returns the callback's values.
---With nargs the callback goes in position nargs + 1.  Cancelling the task
---drops a late callback (opts.on_drop gets its values) and cancels the luv
---request or closes the luv handle fn returned.  opts.name names it.
---@param fn function
---@param nargs? integer
---@param opts? {name: string?, on_drop: function?}
---@return function
function casync.wrap(fn, nargs, opts) end

-- ========================================================== errors, debug

---A casync error value: {kind = kind, message = message, code = code} with a readable tostring.
---@param kind string
---@param message string
---@param code? string
---@return casync.Error
function casync.new_error(kind, message, code) end

---Sends the report of every failure that would be printed as lost (a task that failed with nothing waiting for it, a done callback that failed) to fn instead of stderr; nil: stderr again.  Returns the previous handler.
---@param fn fun(report: {task: casync.Task?, error: any, traceback: string?, message: string})|nil
---@return function? previous
function casync.on_unobserved(fn) end

---Whether v is a casync error (of that kind).
---@param v any
---@param kind? string
---@return boolean
function casync.is_error(v, kind) end

---Starts recording what the tasks do (a table: file =, limit =), stops and returns the recording (false), or returns it so far (no argument).
---The recording is {t0, t1, tasks, events}; with file, it is written as
---Chrome trace-event JSON (Perfetto and chrome://tracing open it).
---@param opts? {file: string?, limit: integer?}|false
---@return table? recording
function casync.trace(opts) end

---Every live task.
---@return casync.Task[]
function casync.tasks() end

---The task tree as text (what each task waits on, where it was spawned, its traceback), written to file (a handle or a path; io.stderr by default) and returned.
---@param file? file*|string
---@return string
function casync.dump(file) end

---Turns debug mode on (tasks' CPU time, wait-for cycles reported as they form, tasks still blocked when run returns) or off (false).
---opts.signal: a dump of the task tree on stderr when it arrives ("SIGUSR1"
---with CASYNC_DEBUG=1); opts.socket = true: a socket `casync ps PID` reads.
---@param opts? {signal: string?, socket: boolean?}|false
---@return true
function casync.debug(opts) end

---Turns the watchdog on (a table), off (false), or reports its state (no argument).
---opts.threshold (0.1 s): how long a task may run without suspending;
---opts.on_block(report) instead of a message on stderr.
---@param opts? {threshold: casync.seconds?, on_block: fun(report: table)?}|false
---@return any
function casync.watchdog(opts) end

-- ============================================================== threads

---Runs fn(...) in a separate Lua state on a worker thread of the default pool, as a task.
---Arguments and results are copied (functions only with _ENV as upvalue),
---and so are the caller's casync.context values (casync_worker.context in
---the job).  The task is cancelled with the caller's cancel scope.
---@param fn function
---@param ... any
---@return casync.Task
function casync.thread(fn, ...) end

---A pool of worker threads: opts.size (default: the number of cores).
---@param opts? {size: integer?}
---@return casync.ThreadPool
function casync.thread_pool(opts) end

---This process's worker number (1..n) under a server's `workers = n`, or nil in a process
---that is not such a worker.
---@return integer|nil n
function casync.worker() end

---A pool of worker processes: opts.size (default: the CPUs), opts.command, opts.env.
---@param opts? {size: integer?, command: string[]?, env: table?}
---@return casync.ProcessPool
function casync.process_pool(opts) end

-- ================================================================ stdio

---Standard input as a stream (when it is a pipe, a socket or a TTY).
---@return casync.Stream|nil stream
---@return casync.Error? err
function casync.stdin() end

---Standard output as a stream (when it is a pipe, a socket or a TTY).
---@return casync.Stream|nil stream
---@return casync.Error? err
function casync.stdout() end

---Standard error as a stream (when it is a pipe, a socket or a TTY).
---@return casync.Stream|nil stream
---@return casync.Error? err
function casync.stderr() end

-- =============================================================== modules

---The global table of a job's Lua state on a worker thread (casync.thread,
---thread pools); a process pool worker has `context` only.
---@class casync_worker
---@field id integer the worker's number in its pool, from 1
---@field pool_size integer the number of workers in its pool
---@field context table a copy of the casync.context values of the task that started the job: its own (changes stay in the job), empty without values
---@field cancelled fun(): boolean true once the job's task has ended (cancelled, by its scope too, or the pool shut down): stop early if you can
---@field now fun(): casync.seconds casync.now()'s clock, its virtual time included
casync_worker = {}

---Task-local context: values inherited by the tasks a task spawns (copied on write), copied into thread and process-pool jobs.
---@class casync.context
casync.context = {}

---The value the running task (or, outside tasks, the root context) has for key, or nil.
---@param key any
---@return any
function casync.context.get(key) end

---Sets key for the running task and the tasks it spawns from now on (nil removes it).
---@param key any
---@param value any
function casync.context.set(key, value) end

---fn(...) with the keys of values added to the context; as before once fn has returned or raised.
---@param values table
---@param fn function
---@param ... any
---@return any ...
function casync.context.with(values, fn, ...) end

---A copy of every value of the running task's context.
---@return table
function casync.context.all() end

---Streams of descriptors.
---@class casync.stream
casync.stream = {}

---Descriptor fd as a stream when it is a pipe, a socket or a TTY; the same stream while it is open.
---@param fd integer
---@return casync.Stream|nil stream
---@return casync.Error? err
function casync.stream.stdio(fd) end

---TCP: connect and listen.
---@class casync.tcp
casync.tcp = {}

---Connects to host:port (each of its addresses in turn); opts.timeout bounds it all.
---@param host string
---@param port integer
---@param opts? {timeout: casync.seconds?}
---@return casync.Stream|nil stream
---@return casync.Error? err
function casync.tcp.connect(host, port, opts) end

---Listens on host:port (0: a free port) and runs handler(stream) in a new task per connection.
---opts.workers = n (> 1): the caller becomes the supervisor of n worker processes that each
---listen on the port (SO_REUSEPORT); the call returns in each worker (see casync.worker).
---@param host string
---@param port integer
---@param handler fun(stream: casync.Stream)
---@param opts? {backlog: integer?, workers: integer?}
---@return casync.Server|nil server
---@return casync.Error? err
function casync.tcp.listen(host, port, handler, opts) end

---TLS (OpenSSL 3) as a layer inside casync streams; refusals are errors of kind "tls" saying why.
---@class casync.tls
---@field library string the OpenSSL version in use
casync.tls = {}

---A TCP connection to host with a TLS handshake; the certificate checked against the system's CAs (opts.ca instead) and host (opts.server_name).
---opts: ca, cert, key, server_name, verify (false: no checks), alpn,
---min_version, max_version, ciphers, ciphersuites, timeout.
---@param host string
---@param port integer
---@param opts? table
---@return casync.Stream|nil stream
---@return casync.Error? err
function casync.tls.connect(host, port, opts) end

---A TCP server whose connections speak TLS: handler(stream) runs once the handshake is done.
---opts: cert, key (files or PEM text), ca (require client certificates),
---alpn, handshake_timeout (30 s), on_error(err).
---@param host string
---@param port integer
---@param handler fun(stream: casync.Stream)
---@param opts table
---@return casync.Server|nil server
---@return casync.Error? err
function casync.tls.listen(host, port, handler, opts) end

---Starts TLS on an open stream (STARTTLS) and returns it once the handshake is done; opts.server = true for the server side.
---@param stream casync.Stream
---@param opts table
---@return casync.Stream|nil stream
---@return casync.Error? err
function casync.tls.wrap(stream, opts) end

---UDP sockets.
---@class casync.udp
casync.udp = {}

---A UDP socket bound to host:port (0: a free port); opts.reuseaddr, opts.ipv6only.  A host name needs a task.
---@param host string
---@param port integer
---@param opts? {reuseaddr: boolean?, ipv6only: boolean?}
---@return casync.UdpSocket|nil sock
---@return casync.Error? err
function casync.udp.bind(host, port, opts) end

---Unix-domain sockets.
---@class casync.pipe
casync.pipe = {}

---Connects to the Unix-domain socket at path; opts.timeout.
---@param path string
---@param opts? {timeout: casync.seconds?}
---@return casync.Stream|nil stream
---@return casync.Error? err
function casync.pipe.connect(path, opts) end

---Listens on a new Unix-domain socket at path and runs handler(stream) in a new task per connection.
---@param path string
---@param handler fun(stream: casync.Stream)
---@param opts? {backlog: integer?}
---@return casync.Server|nil server
---@return casync.Error? err
function casync.pipe.listen(path, handler, opts) end

---Name resolution.
---@class casync.dns
casync.dns = {}

---The addresses of host: {{address =, family = "inet"|"inet6"}, ...}; opts.family, opts.timeout.
---@param host string
---@param opts? {family: "inet"|"inet6"|"any"?, timeout: casync.seconds?}
---@return {address: string, family: string}[]|nil addresses
---@return casync.Error? err
function casync.dns.resolve(host, opts) end

---Files: each call suspends only its task; failures return nil and an error of kind "io".
---@class casync.fs
casync.fs = {}

---Opens a file: flags as io.open's ("r" default, "w", "a", "r+", "w+", "a+", "x") and mode its permissions.
---@param path string
---@param flags? string|integer
---@param mode? string|integer
---@return casync.File|nil file
---@return casync.Error? err
function casync.fs.open(path, flags, mode) end

---The whole file as a string.
---@param path string
---@return string|nil data
---@return casync.Error? err
function casync.fs.read_file(path) end

---Replaces the file's contents with data (creating it), or appends with opts.append.
---@param path string
---@param data string
---@param opts? {append: boolean?, mode: string|integer?}
---@return true|nil ok
---@return casync.Error? err
function casync.fs.write_file(path, data, opts) end

---type ("file", "directory", "link", ...), size, mode, mtime and the rest of stat(2).
---@param path string
---@return table|nil stat
---@return casync.Error? err
function casync.fs.stat(path) end

---stat that does not follow a final symbolic link.
---@param path string
---@return table|nil stat
---@return casync.Error? err
function casync.fs.lstat(path) end

---Makes a directory (mode or opts.mode; opts.recursive makes the missing parents).
---@param path string
---@param opts? string|integer|{mode: string|integer?, recursive: boolean?}
---@return true|nil ok
---@return casync.Error? err
function casync.fs.mkdir(path, opts) end

---Renames (moves) a file or directory.
---@param from string
---@param to string
---@return true|nil ok
---@return casync.Error? err
function casync.fs.rename(from, to) end

---Removes a file or an empty directory.
---@param path string
---@return true|nil ok
---@return casync.Error? err
function casync.fs.remove(path) end

---Removes a file (not a directory).
---@param path string
---@return true|nil ok
---@return casync.Error? err
function casync.fs.unlink(path) end

---Removes an empty directory.
---@param path string
---@return true|nil ok
---@return casync.Error? err
function casync.fs.rmdir(path) end

---Copies a file.
---@param from string
---@param to string
---@return true|nil ok
---@return casync.Error? err
function casync.fs.copyfile(from, to) end

---Makes a symbolic link at path pointing to target.
---@param target string
---@param path string
---@return true|nil ok
---@return casync.Error? err
function casync.fs.symlink(target, path) end

---The target of a symbolic link.
---@param path string
---@return string|nil target
---@return casync.Error? err
function casync.fs.readlink(path) end

---Changes a file's permissions ("600" or an integer).
---@param path string
---@param mode string|integer
---@return true|nil ok
---@return casync.Error? err
function casync.fs.chmod(path, mode) end

---An iterator over the entries of a directory, sorted: `for name, type in casync.fs.dir(p)`; raises if it cannot list.
---@param path string
---@return fun(): string?, string?
function casync.fs.dir(path) end

---Child processes and process pools.
---@class casync.process
casync.process = {}

---Starts argv[1] with argv[2..] (no shell unless opts.shell); stdio "inherit", "ignore", "pipe", a descriptor, a file or a stream.
---opts: env (merged; false removes), clear_env, cwd, detached, shell,
---stdin, stdout, stderr, fds = {[3] = ...}.  Does not suspend.
---@param argv string[]|string
---@param opts? table
---@return casync.Process|nil process
---@return casync.Error? err
function casync.process.spawn(argv, opts) end

---Runs argv to its end and returns {code =, signal =, stdout =, stderr =}; opts.input, opts.timeout, and spawn's options.
---@param argv string[]|string
---@param opts? table
---@return {code: integer, signal: string?, stdout: string?, stderr: string?}|nil result
---@return casync.Error? err
function casync.process.run(argv, opts) end

---A process pool (the same as casync.process_pool).
---@param opts? {size: integer?, command: string[]?, env: table?}
---@return casync.ProcessPool
function casync.process.pool(opts) end

---The number of CPUs this process may use.
---@return integer
function casync.process.cpu_count() end

---The path of the running executable.
---@return string
function casync.process.exepath() end

---This process's id.
---@return integer
function casync.process.pid() end

---Signals.
---@class casync.signal
casync.signal = {}

---Suspends until signal sig arrives and returns its name; nil and an error of kind "timeout" after timeout seconds.
---@param sig string|integer a name ("SIGHUP", "hup") or a number
---@param timeout? casync.seconds
---@return string|nil name
---@return casync.Error? err
function casync.signal.wait(sig, timeout) end

---Stops handling sig: its default action applies again.
---@param sig string|integer
function casync.signal.reset(sig) end

---Sends sig to this process.
---@param sig string|integer
function casync.signal.raise(sig) end

---The name of a signal ("SIGTERM"), or nil for a number without one.
---@param sig string|integer
---@return string?
function casync.signal.name(sig) end

-- ================================================================= HTTP

---HTTP/1.1: a server (C) and a client (Lua) on casync.tcp.
---@class casync.http
---@field null lightuserdata JSON null (lua-cjson's)
casync.http = {}

---Answers HTTP/1.1 on host:port, running handler(req) in a new task per request.
---The handler returns a string, {status =, headers =, body = | json =} or nothing (204).
---@param host string
---@param port integer
---@param handler fun(req: casync.http.Request): any
---opts.workers = n (> 1): n worker processes serve it, as for casync.tcp.listen.
---@param opts? table max_connections, max_body_size, header_timeout, keep_alive_timeout, request_timeout (a deadline on each request: 503), tls, workers, ...
---@return casync.HttpServer|nil server
---@return casync.Error? err
function casync.http.serve(host, port, handler, opts) end

---Makes a request: opts.url, method, headers, body, json, query, timeout, max_redirects, max_body_size, tls, forward_request_id (false: do not send the handler's request id).
---@param opts table
---@return casync.http.Response|nil response
---@return casync.Error? err
function casync.http.request(opts) end

---GET url.
---@param url string
---@param opts? table as request's
---@return casync.http.Response|nil response
---@return casync.Error? err
function casync.http.get(url, opts) end

---POST body (a string, or options with json =, ...) to url.
---@param url string
---@param body string|table
---@param opts? table as request's
---@return casync.http.Response|nil response
---@return casync.Error? err
function casync.http.post(url, body, opts) end

---A session (aiohttp's ClientSession): its own keep-alive pool, opts.base_url, opts.headers, opts.timeout, opts.tls (for requests without their own).
---@param opts? {base_url: string?, headers: table?, timeout: casync.seconds?, max_idle: integer?, idle_timeout: casync.seconds?, tls: table?}
---@return casync.http.Session
function casync.http.session(opts) end

---Closes the default pool's idle connections and returns how many there were.
---@return integer
function casync.http.close_idle() end

---Percent-encodes s for a URL.
---@param s string
---@return string
function casync.http.escape(s) end

---Decodes percent-encoding (and + as a space).
---@param s string
---@return string
function casync.http.unescape(s) end

---A query string from a table.
---@param t table
---@return string
function casync.http.encode_query(t) end

---A table from a query string.
---@param q string
---@return table
function casync.http.parse_query(q) end

---JSON text of a value (lua-cjson).
---@param value any
---@return string
function casync.http.json_encode(value) end

---The value of JSON text, or nil and an error.
---@param text string
---@return any value
---@return casync.Error? err
function casync.http.json_decode(text) end

---The reason phrase of a status ("Not Found").
---@param status integer
---@return string
function casync.http.reason(status) end

---The parts of an absolute URL, or nil and a message.
---@param url string
---@return {scheme: string, host: string, port: integer?, path: string?, query: string?, fragment: string?, userinfo: string?}|nil parts
---@return string? message
function casync.http.parse_url(url) end

---The absolute URL that ref names relative to base (RFC 3986 5.2).
---@param base string
---@param ref string
---@return string
function casync.http.resolve(base, ref) end

---A WebSocket client connection (RFC 6455) to a ws:// or wss:// URL.
---@param url string
---@param opts? table max_message_size, ping_interval, ping_timeout, close_timeout, fragment_size, protocols, timeout, headers, tls
---@return casync.WebSocket|nil ws
---@return casync.Error? err
function casync.http.websocket(url, opts) end

-- ======================================================== luv as waits

---luv's request functions wrapped by casync.wrap: each suspends the task and returns the callback's values (err, result...).
---nil when luv is not installed.  Cancelling the task cancels the request.
---@class casync.uv
casync.uv = {}

---uv.fs_close as a wait.
---@param fd integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_close(fd) end
---uv.fs_open as a wait.
---@param path string
---@param flags string|integer
---@param mode integer
---@return string? err
---@return integer? fd
function casync.uv.fs_open(path, flags, mode) end
---uv.fs_read as a wait.
---@param fd integer
---@param size integer
---@param offset? integer
---@return string? err
---@return string? data
function casync.uv.fs_read(fd, size, offset) end
---uv.fs_write as a wait.
---@param fd integer
---@param data string|string[]
---@param offset? integer
---@return string? err
---@return integer? bytes
function casync.uv.fs_write(fd, data, offset) end
---uv.fs_unlink as a wait.
---@param path string
---@return string? err
---@return boolean? ok
function casync.uv.fs_unlink(path) end
---uv.fs_mkdir as a wait.
---@param path string
---@param mode integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_mkdir(path, mode) end
---uv.fs_mkdtemp as a wait.
---@param template string
---@return string? err
---@return string? path
function casync.uv.fs_mkdtemp(template) end
---uv.fs_mkstemp as a wait.
---@param template string
---@return string? err
---@return integer? fd
---@return string? path
function casync.uv.fs_mkstemp(template) end
---uv.fs_rmdir as a wait.
---@param path string
---@return string? err
---@return boolean? ok
function casync.uv.fs_rmdir(path) end
---uv.fs_scandir as a wait.
---@param path string
---@return string? err
---@return userdata? handle for uv.fs_scandir_next
function casync.uv.fs_scandir(path) end
---uv.fs_stat as a wait.
---@param path string
---@return string? err
---@return table? stat
function casync.uv.fs_stat(path) end
---uv.fs_fstat as a wait.
---@param fd integer
---@return string? err
---@return table? stat
function casync.uv.fs_fstat(fd) end
---uv.fs_lstat as a wait.
---@param path string
---@return string? err
---@return table? stat
function casync.uv.fs_lstat(path) end
---uv.fs_rename as a wait.
---@param path string
---@param new_path string
---@return string? err
---@return boolean? ok
function casync.uv.fs_rename(path, new_path) end
---uv.fs_fsync as a wait.
---@param fd integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_fsync(fd) end
---uv.fs_fdatasync as a wait.
---@param fd integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_fdatasync(fd) end
---uv.fs_ftruncate as a wait.
---@param fd integer
---@param offset integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_ftruncate(fd, offset) end
---uv.fs_sendfile as a wait.
---@param out_fd integer
---@param in_fd integer
---@param in_offset integer
---@param size integer
---@return string? err
---@return integer? bytes
function casync.uv.fs_sendfile(out_fd, in_fd, in_offset, size) end
---uv.fs_access as a wait.
---@param path string
---@param mode string|integer
---@return string? err
---@return boolean? permitted
function casync.uv.fs_access(path, mode) end
---uv.fs_chmod as a wait.
---@param path string
---@param mode integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_chmod(path, mode) end
---uv.fs_fchmod as a wait.
---@param fd integer
---@param mode integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_fchmod(fd, mode) end
---uv.fs_utime as a wait.
---@param path string
---@param atime number
---@param mtime number
---@return string? err
---@return boolean? ok
function casync.uv.fs_utime(path, atime, mtime) end
---uv.fs_futime as a wait.
---@param fd integer
---@param atime number
---@param mtime number
---@return string? err
---@return boolean? ok
function casync.uv.fs_futime(fd, atime, mtime) end
---uv.fs_lutime as a wait.
---@param path string
---@param atime number
---@param mtime number
---@return string? err
---@return boolean? ok
function casync.uv.fs_lutime(path, atime, mtime) end
---uv.fs_link as a wait.
---@param path string
---@param new_path string
---@return string? err
---@return boolean? ok
function casync.uv.fs_link(path, new_path) end
---uv.fs_symlink as a wait.
---@param path string
---@param new_path string
---@param flags? table|integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_symlink(path, new_path, flags) end
---uv.fs_readlink as a wait.
---@param path string
---@return string? err
---@return string? target
function casync.uv.fs_readlink(path) end
---uv.fs_realpath as a wait.
---@param path string
---@return string? err
---@return string? real_path
function casync.uv.fs_realpath(path) end
---uv.fs_chown as a wait.
---@param path string
---@param uid integer
---@param gid integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_chown(path, uid, gid) end
---uv.fs_fchown as a wait.
---@param fd integer
---@param uid integer
---@param gid integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_fchown(fd, uid, gid) end
---uv.fs_lchown as a wait.
---@param path string
---@param uid integer
---@param gid integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_lchown(path, uid, gid) end
---uv.fs_copyfile as a wait.
---@param path string
---@param new_path string
---@param flags? table|integer
---@return string? err
---@return boolean? ok
function casync.uv.fs_copyfile(path, new_path, flags) end
---uv.fs_opendir as a wait (entries: how many fs_readdir returns at most).
---@param path string
---@param entries? integer
---@return string? err
---@return userdata? dir
function casync.uv.fs_opendir(path, entries) end
---uv.fs_readdir as a wait.
---@param dir userdata
---@return string? err
---@return table? entries
function casync.uv.fs_readdir(dir) end
---uv.fs_closedir as a wait.
---@param dir userdata
---@return string? err
---@return boolean? ok
function casync.uv.fs_closedir(dir) end
---uv.fs_statfs as a wait.
---@param path string
---@return string? err
---@return table? statfs
function casync.uv.fs_statfs(path) end
---uv.getaddrinfo as a wait.
---@param host string?
---@param service string?
---@param hints? table
---@return string? err
---@return table? addresses
function casync.uv.getaddrinfo(host, service, hints) end
---uv.getnameinfo as a wait.
---@param address {ip: string?, port: integer?, family: string|integer?}
---@return string? err
---@return string? host
---@return string? service
function casync.uv.getnameinfo(address) end
---uv.random as a wait.
---@param len integer
---@param flags? integer
---@return string? err
---@return string? bytes
function casync.uv.random(len, flags) end

-- ============================================================== classes

---A task: a coroutine casync runs.
---@class casync.Task
local Task = {}

---Suspends until the task ends; its results, or its error re-raised unchanged.
---@return any ...
function Task:wait() end

---Requests its cancellation (an error of kind "cancelled" where it waits); false if it had ended.
---@param msg? string
---@return boolean
function Task:cancel(msg) end

---Whether it has ended, in any way.
---@return boolean
function Task:done() end

---Whether it ended by an uncaught cancellation.
---@return boolean
function Task:cancelled() end

---The results of an ended task; raises if it has not ended, re-raises its error.
---@return any ...
function Task:result() end

---The error of a failed task, nil if it succeeded; raises if it has not ended.
---@return any
function Task:error() end

---Calls cb(task) once it has ended (soon, if it already has).
---@param cb fun(task: casync.Task)
function Task:add_done_callback(cb) end

---Where it failed and where it was spawned, or nil.
---@return string?
function Task:traceback() end

---The name given to spawn, or nil.
---@return string?
function Task:name() end

---Its number, unique in this Lua state.
---@return integer
function Task:id() end

---What the task is and does now: {id, name, state, parent, children, spawned_at, waiting_on, traceback, context, cpu}.
---@return table
function Task:info() end

---A scope that owns its tasks (casync.scope).
---@class casync.Scope
local Scope = {}

---Runs fn(...) as a task of the scope; raises once the scope is closed.
---@param fn function|{name: string?}
---@param ... any
---@return casync.Task
function Scope:spawn(fn, ...) end

---Cancels the body and every task of the scope.
function Scope:cancel() end

---Whether it was cancelled (or a task of it failed).
---@return boolean
function Scope:cancelled() end

---Waits for every task of the scope, then raises its failure(s), if any (also its __close).
function Scope:close() end

---Whether it has ended.
---@return boolean
function Scope:closed() end

---How many of its tasks are still running.
---@return integer
function Scope:tasks() end

---A cancel scope with a deadline (casync.timeout).
---@class casync.CancelScope
local CancelScope = {}

---Cancels the block now: every wait in it raises.
function CancelScope:cancel() end

---Whether it was cancelled (or its deadline passed).
---@return boolean
function CancelScope:cancelled() end

---Whether its deadline cancelled it.
---@return boolean
function CancelScope:expired() end

---Its deadline on casync.now()'s clock, or nil.
---@return casync.seconds?
function CancelScope:deadline() end

---Leaves the block; its own expiry on the way out becomes an error of kind "timeout" (also its __close).
function CancelScope:close() end

---An error casync raises or returns: kind ("timeout", "cancelled", "closed", "io", ...), message, code ("ENOENT").
---@class casync.Error
---@field kind string
---@field message string
---@field code string?
---@field traceback string?
local Error = {}

---A channel (Go's): send and recv meet; a buffered one holds capacity values.
---@class casync.Channel
local Channel = {}

---Suspends until v is taken (or buffered); an error of kind "closed" if the channel is closed.
---@param v any not nil
function Channel:send(v) end

---Suspends until a value comes; nil, false once the channel is closed and drained.
---@return any value
---@return boolean ok
function Channel:recv() end

---Sends without suspending if a receiver waits or there is room.
---@param v any
---@return boolean sent
function Channel:try_send(v) end

---Receives without suspending: the value, or nil and "empty" or "closed".
---@return any value
---@return string? why
function Channel:try_recv() end

---No more sends; receivers drain what is left, then get nil.  Closing twice is harmless.
function Channel:close() end

---Whether it is closed.
---@return boolean
function Channel:closed() end

---An iterator: `for v in ch:iter() do ... end` until closed and drained.
---@return fun(): any
function Channel:iter() end

---The number of values buffered.
---@return integer
function Channel:len() end

---Its capacity.
---@return integer
function Channel:cap() end

---A queue (asyncio's): FIFO, LIFO or priority, bounded or not, with task_done and join.
---@class casync.Queue
local Queue = {}

---Suspends while the queue is full; priority (default 0, lower first) for priority queues.
---@param item any
---@param priority? number
function Queue:put(item, priority) end

---Suspends while it is empty; nil, false once it is closed and drained.
---@return any item
---@return boolean ok
function Queue:get() end

---Puts without suspending if there is room.
---@param item any
---@param priority? number
---@return boolean
function Queue:try_put(item, priority) end

---Gets without suspending: the item, or nil and "empty" or "closed".
---@return any item
---@return string? why
function Queue:try_get() end

---One item taken with get is finished.
function Queue:task_done() end

---Suspends until every item put was marked task_done; false after timeout seconds.
---@param timeout? casync.seconds
---@return boolean
function Queue:join(timeout) end

---No more puts; getters drain it, then get nil, false.
function Queue:close() end

---Whether it is closed.
---@return boolean
function Queue:closed() end

---An iterator: `for item in q:iter() do ... end` until closed and drained.
---@return fun(): any
function Queue:iter() end

---The number of items in it.
---@return integer
function Queue:qsize() end

---The number of items in it (as qsize, and #q).
---@return integer
function Queue:len() end

---Its bound, 0 for none.
---@return integer
function Queue:maxsize() end

---Whether it is empty.
---@return boolean
function Queue:empty() end

---Whether it is full.
---@return boolean
function Queue:full() end

---Items put and not yet marked task_done.
---@return integer
function Queue:unfinished() end

---A semaphore: acquire returns a permit, usable as `local p <close> = sem:acquire()`.
---@class casync.Semaphore
local Semaphore = {}

---Suspends until a permit is free (first come, first served); nil and a "timeout" error after timeout seconds.
---@param timeout? casync.seconds
---@return casync.Permit|nil permit
---@return casync.Error? err
function Semaphore:acquire(timeout) end

---Takes a free permit without waiting, or returns nil.
---@return casync.Permit?
function Semaphore:try_acquire() end

---Gives back a permit; raises when none is out.
function Semaphore:release() end

---Permits free now.
---@return integer
function Semaphore:value() end

---Whether no permit is free.
---@return boolean
function Semaphore:locked() end

---A lock: a semaphore of 1 that only its holder releases.
---@class casync.Lock
local Lock = {}

---Suspends until the lock is free; nil and a "timeout" error after timeout seconds.
---@param timeout? casync.seconds
---@return casync.Permit|nil permit
---@return casync.Error? err
function Lock:acquire(timeout) end

---Takes the lock if it is free, or returns nil.
---@return casync.Permit?
function Lock:try_acquire() end

---Releases the lock; raises unless the caller holds it.
function Lock:release() end

---1 if it is free, else 0.
---@return integer
function Lock:value() end

---Whether it is held.
---@return boolean
function Lock:locked() end

---A permit of a semaphore or a lock; released once, by release or <close>.
---@class casync.Permit
local Permit = {}

---Gives the permit back (only the first call counts).
function Permit:release() end

---An event: wait suspends until it is set.
---@class casync.Event
local Event = {}

---Suspends until the event is set (true at once if it is); false after timeout seconds.
---@param timeout? casync.seconds
---@return boolean
function Event:wait(timeout) end

---Sets it and wakes every waiter.
function Event:set() end

---Unsets it.
function Event:clear() end

---Whether it is set.
---@return boolean
function Event:is_set() end

---A condition variable over a lock.
---@class casync.Condition
local Condition = {}

---Releases the lock (which the caller holds), waits for notify, takes the lock back; false on timeout.
---@param timeout? casync.seconds
---@return boolean
function Condition:wait(timeout) end

---Wakes up to n (default 1) waiters; the lock must be held.
---@param n? integer
function Condition:notify(n) end

---Wakes every waiter; the lock must be held.
function Condition:notify_all() end

---Acquires its lock.
---@param timeout? casync.seconds
---@return casync.Permit|nil permit
---@return casync.Error? err
function Condition:acquire(timeout) end

---Releases its lock.
function Condition:release() end

---Its lock.
---@return casync.Lock
function Condition:lock() end

---A sliding-window rate limiter.
---@class casync.RateLimiter
local RateLimiter = {}

---Suspends until one more acquisition stays within the limit, and counts it.
function RateLimiter:acquire() end

---Counts an acquisition if one is allowed now and nobody waits.
---@return boolean
function RateLimiter:try_acquire() end

---A function that acquires, then calls fn(...).
---@param fn function
---@return function
function RateLimiter:wrap(fn) end

---A pool of worker threads, each with a Lua state of its own.
---@class casync.ThreadPool
local ThreadPool = {}

---Runs fn(...) on one of the pool's workers, as a task (cancelled with the caller's cancel scope).
---@param fn function
---@param ... any
---@return casync.Task
function ThreadPool:run(fn, ...) end

---fn(item) for each item on the workers (opts.chunksize items per job); the first results, in order.
---The caller's casync.context values go with each job; cancelling the
---caller (its scope too) drops the queued jobs and cancels the running ones.
---@param fn function
---@param list table
---@param opts? {chunksize: integer?}
---@return table results
function ThreadPool:map(fn, list, opts) end

---The number of workers.
---@return integer
function ThreadPool:size() end

---{size, busy, queued, alive, closed}.
---@return table
function ThreadPool:stats() end

---Takes no more jobs; queued ones still run, then the workers end.
function ThreadPool:close() end

---A pool of worker processes (Python's ProcessPoolExecutor).
---@class casync.ProcessPool
local ProcessPool = {}

---Runs fn(...) in a worker process, as a task started at once (executor.submit).
---The caller's casync.context values go with it (casync_worker.context);
---the task is cancelled with the caller's cancel scope (its worker killed).
---@param fn function
---@param ... any
---@return casync.Task
function ProcessPool:run(fn, ...) end

---fn(item) for each item in worker processes (opts.chunksize per call); the first results, in order.
---@param fn function
---@param list table
---@param opts? {chunksize: integer?}
---@return table results
function ProcessPool:map(fn, list, opts) end

---The most workers it runs at once.
---@return integer
function ProcessPool:size() end

---Ends the workers; inside a task, waits until they have.
function ProcessPool:close() end

---A byte stream: a TCP connection, a Unix-domain socket, a pipe or a TTY.
---@class casync.Stream
local Stream = {}

---Up to n bytes (default 65536) once at least one is there; nil at the end of the stream.
---@param n? integer
---@param timeout? casync.seconds
---@return string|nil data
---@return casync.Error? err
function Stream:read(n, timeout) end

---The next line without its "\n" or "\r\n"; an error of kind "limit" past max_len.
---@param max_len? integer
---@param timeout? casync.seconds
---@return string|nil line
---@return casync.Error? err
function Stream:read_line(max_len, timeout) end

---The bytes before the next delim (consumed, not returned).
---@param delim string
---@param max_len? integer
---@param timeout? casync.seconds
---@return string|nil data
---@return casync.Error? err
function Stream:read_until(delim, max_len, timeout) end

---Exactly n bytes; an error of kind "eof" if the stream ends first.
---@param n integer
---@param timeout? casync.seconds
---@return string|nil data
---@return casync.Error? err
function Stream:read_exactly(n, timeout) end

---Up to n of the bytes already buffered, without consuming them or waiting.
---@param n? integer
---@return string
function Stream:peek(n) end

---The number of bytes read but not yet consumed.
---@return integer
function Stream:buffered() end

---Puts data back in front of the buffered bytes.
---@param data string
function Stream:unread(data) end

---Writes a string or an array of strings; suspends until the kernel has taken all of it.
---@param data string|string[]
---@param timeout? casync.seconds
---@return true|nil ok
---@return casync.Error? err
function Stream:write(data, timeout) end

---Sends end-of-stream to the peer once the pending writes are out.
---@param timeout? casync.seconds
---@return true|nil ok
---@return casync.Error? err
function Stream:shutdown(timeout) end

---Closes it now; tasks waiting on it get nil and an error of kind "closed".
function Stream:close() end

---Whether it is closed.
---@return boolean
function Stream:closed() end

---The default timeout of each waiting operation (nil: none).
---@param seconds casync.seconds?
function Stream:set_timeout(seconds) end

---The local address: host, port (TCP) or path (pipe).
---@return string|nil host
---@return integer|casync.Error|nil port
function Stream:sockname() end

---The peer's address: host, port (TCP) or path (pipe).
---@return string|nil host
---@return integer|casync.Error|nil port
function Stream:peername() end

---TCP_NODELAY (on by default for TCP streams casync makes).
---@param on boolean
---@return true|nil ok
---@return casync.Error? err
function Stream:set_nodelay(on) end

---"tcp", "pipe" or "tty".
---@return string
function Stream:kind() end

---What the TLS handshake agreed: {version, cipher, alpn, server_name, peer_subject, verified}; nil for a plain stream.
---@return table?
function Stream:tls_info() end

---A UDP socket (casync.udp.bind).
---@class casync.UdpSocket
local UdpSocket = {}

---The next datagram and who sent it: data, host, port, truncated (longer than max_size, default 65536).
---@param max_size? integer
---@param timeout? casync.seconds
---@return string|nil data
---@return string|casync.Error|nil host
---@return integer? port
---@return boolean? truncated
function UdpSocket:recv(max_size, timeout) end

---Sends one datagram to host:port, or to the connected peer without them.
---@param data string
---@param host? string
---@param port? integer
---@param timeout? casync.seconds
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:send(data, host, port, timeout) end

---Sends go to host:port only, and only its datagrams are received.
---@param host string
---@param port integer
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:connect(host, port) end

---Undoes connect.
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:disconnect() end

---The local address: host, port.
---@return string|nil host
---@return integer|casync.Error|nil port
function UdpSocket:sockname() end

---The connected peer: host, port.
---@return string|nil host
---@return integer|casync.Error|nil port
function UdpSocket:peername() end

---Whether it may send to broadcast addresses.
---@param on boolean
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:set_broadcast(on) end

---The unicast time to live (1..255).
---@param n integer
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:set_ttl(n) end

---The multicast time to live (0 keeps it on this host).
---@param n integer
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:set_multicast_ttl(n) end

---Whether its own multicast comes back.
---@param on boolean
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:set_multicast_loop(on) end

---The interface multicast goes out of (an address of this host).
---@param addr string
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:set_multicast_interface(addr) end

---Joins a multicast group.
---@param group string
---@param interface? string
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:join(group, interface) end

---Leaves a multicast group.
---@param group string
---@param interface? string
---@return true|nil ok
---@return casync.Error? err
function UdpSocket:leave(group, interface) end

---The default timeout of send and recv (nil: none).
---@param seconds casync.seconds?
function UdpSocket:set_timeout(seconds) end

---Closes it; a task waiting in recv gets an error of kind "closed".
function UdpSocket:close() end

---Whether it is closed.
---@return boolean
function UdpSocket:closed() end

---A listener (casync.tcp.listen, casync.pipe.listen).
---@class casync.Server
local Server = {}

---Stops accepting; with {cancel = true} the running handler tasks are cancelled too.
---@param opts? {cancel: boolean?}
function Server:close(opts) end

---Whether it is closed.
---@return boolean
function Server:closed() end

---host, port (TCP) or path (pipe).
---@return string|nil host
---@return integer|casync.Error|nil port
function Server:address() end

---The TCP port it listens on (the one picked for port 0).
---@return integer
function Server:port() end

---The number of handler tasks still running.
---@return integer
function Server:connections() end

---{accepted =, errors =, last_error =, connections =}.
---@return table
function Server:stats() end

---An open file (casync.fs.open).
---@class casync.File
local File = {}

---Up to n bytes (default 65536; "a": to the end) from offset or the current position; nil at the end.
---@param n? integer|"a"
---@param offset? integer
---@return string|nil data
---@return casync.Error? err
function File:read(n, offset) end

---Writes all of data at offset or the current position.
---@param data string
---@param offset? integer
---@return true|nil ok
---@return casync.Error? err
function File:write(data, offset) end

---Moves the position as io's seek ("set", "cur" (default), "end"); never suspends.
---@param whence? "set"|"cur"|"end"
---@param offset? integer
---@return integer|nil position
---@return casync.Error? err
function File:seek(whence, offset) end

---As casync.fs.stat.
---@return table|nil stat
---@return casync.Error? err
function File:stat() end

---Flushes the file to the disk (fsync).
---@return true|nil ok
---@return casync.Error? err
function File:sync() end

---Truncates the file to size bytes (default 0).
---@param size? integer
---@return true|nil ok
---@return casync.Error? err
function File:truncate(size) end

---Closes it (never suspends); closing again does nothing.
---@return true
function File:close() end

---Whether it is closed.
---@return boolean
function File:closed() end

---Its descriptor (for casync.process.spawn's stdio).
---@return integer
function File:fileno() end

---A child process (casync.process.spawn): fields pid, stdin, stdout, stderr, fds.
---@class casync.Process
---@field pid integer
---@field stdin casync.Stream?
---@field stdout casync.Stream?
---@field stderr casync.Stream?
---@field fds table<integer, casync.Stream>
local Process = {}

---Suspends until the child exits: its exit code (128 + n after signal n) and the signal's name or nil.
---@param timeout? casync.seconds
---@return integer|nil code
---@return string|casync.Error|nil signal
function Process:wait(timeout) end

---nil while it runs, else the code and signal as wait; does not suspend.
---@return integer? code
---@return string? signal
function Process:poll() end

---Sends sig (default SIGTERM).
---@param sig? string|integer
---@return true|nil ok
---@return casync.Error? err
function Process:kill(sig) end

---Closes its pipes (the child goes on running).
function Process:close() end

---An HTTP server (casync.http.serve).
---@class casync.HttpServer
local HttpServer = {}

---Stops accepting; answers in progress finish (with {cancel = true} they are cancelled).
---@param opts? {cancel: boolean?}
function HttpServer:close(opts) end

---Whether it is closed.
---@return boolean
function HttpServer:closed() end

---host, port it listens on.
---@return string|nil host
---@return integer|casync.Error|nil port
function HttpServer:address() end

---The port it listens on.
---@return integer
function HttpServer:port() end

---"http://host:port/" .. path.
---@param path? string
---@return string
function HttpServer:url(path) end

---Open connections.
---@return integer
function HttpServer:connections() end

---Counters: accepted, requests, ...
---@return table
function HttpServer:stats() end

---A request as the server's handler gets it: method, path, target, query, version, headers, body.
---@class casync.http.Request
---@field method string
---@field path string
---@field target string
---@field query table
---@field version string
---@field headers table<string, string>
---@field body string
local Request = {}

---The body decoded as JSON, or nil and an error.
---@return any value
---@return casync.Error? err
function Request:json() end

---Answers the request's WebSocket upgrade (101) and returns the connection; it closes when the handler returns.
---@param opts? table max_message_size, ping_interval, ping_timeout, close_timeout, fragment_size, protocols
---@return casync.WebSocket|nil ws
---@return casync.Error? err
function Request:websocket(opts) end

---A WebSocket connection (casync.http.websocket, req:websocket).
---@class casync.WebSocket
---@field protocol string? the subprotocol agreed on
local WebSocket = {}

---The next whole message and its kind ("text" or "binary"); nil and an error once closed (err.close_code) or after timeout seconds (kind "timeout": nothing is lost).
---@param timeout? casync.seconds
---@return string|nil message
---@return string|casync.Error kind_or_err
function WebSocket:recv(timeout) end

---Sends a message (text by default, which must be UTF-8); suspends while the peer reads slower than we write.
---@param msg string
---@param kind? "text"|"binary"
---@return true|nil ok
---@return casync.Error? err
function WebSocket:send(msg, kind) end

---Sends a ping (the pong is seen by recv).
---@param data? string at most 125 bytes
---@return true|nil ok
---@return casync.Error? err
function WebSocket:ping(data) end

---The closing handshake, then the connection closes; again: nothing.
---@param code? integer 1000 by default
---@param reason? string
---@return true
function WebSocket:close(code, reason) end

---Whether it is closed.
---@return boolean
function WebSocket:closed() end

---A response: status, ok, reason, headers, body.
---@class casync.http.Response
---@field status integer
---@field ok boolean
---@field headers table<string, string>
---@field body string
local Response = {}

---The body decoded as JSON, or nil and an error.
---@return any value
---@return casync.Error? err
function Response:json() end

---An HTTP client session with its own keep-alive pool.
---@class casync.http.Session
local Session = {}

---A request relative to the session's base_url, with its headers and timeout.
---@param opts table
---@return casync.http.Response|nil response
---@return casync.Error? err
function Session:request(opts) end

---GET url.
---@param url string
---@param opts? table
---@return casync.http.Response|nil response
---@return casync.Error? err
function Session:get(url, opts) end

---POST to url (opts.body, opts.json, ...).
---@param url string
---@param opts? table
---@return casync.http.Response|nil response
---@return casync.Error? err
function Session:post(url, opts) end

---Closes the session's connections.
function Session:close() end

return casync
