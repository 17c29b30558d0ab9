/* workers.c: serving on every core.  tcp.listen and http.serve take
 * `workers = n`: the calling process becomes a supervisor of n worker
 * processes, forked from it, that each listen on the same address with
 * SO_REUSEPORT (the kernel spreads the connections over their sockets).
 *
 * The supervisor runs no Lua and no loop from then on: it blocks SIGTERM,
 * SIGINT and SIGCHLD and takes them with sigtimedwait.  A worker that dies
 * (a signal, or a non-zero exit) is forked again from the supervisor's
 * state, which has not moved since the first fork, so the new worker too
 * returns from the listen call as if it had just been made (no sooner than
 * a second after the one it replaces started: a program that fails at
 * once is not forked in a loop).  SIGTERM or SIGINT is forwarded to every
 * worker; once they have all ended, the supervisor ends by the same
 * signal.  When every worker has exited with status 0 on its own, the
 * supervisor exits with 0.  Workers run in a process group of their own
 * (a Ctrl-C in a terminal reaches the supervisor only, which forwards it
 * once) and get SIGTERM if the supervisor dies.
 *
 * The supervisor keeps a socket bound (not listening) to the address, so
 * the port stays theirs across restarts, and so port 0 gives every worker
 * the same port.
 *
 * Fork and threads: only the thread that forks goes on in a worker, so
 * workers must be started before casync.thread or the watchdog start
 * threads (an error says so).  libuv's own thread pool starts again by
 * itself in the child.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include "io.h"

#define MAX_WORKERS 1024
/* a worker lives 1 s before its replacement may start */
#define RESTART_DELAY_NS 1000000000ull

static int worker_index; /* this process's worker number, 0: none */

/* opts.workers at index opts (a table or nil): 1 when absent. */
int casync__workers_opt(lua_State *L, int opts) {
  lua_Integer n = casync__net_opt_int(L, opts, "workers", 1);
  luaL_argcheck(L, n >= 1 && n <= MAX_WORKERS, opts,
                "opts.workers must be in 1..1024");
  return (int)n;
}

/* A socket for ss, bound, with SO_REUSEPORT when reuseport: returns the
 * descriptor or a negative libuv error. */
static int bound_socket(const struct sockaddr_storage *ss, int reuseport) {
  int one = 1, fd, r;
  socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
  fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  /* as libuv's uv_tcp_bind does */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      (reuseport &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
      (ss->ss_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
      bind(fd, (const struct sockaddr *)ss, len) < 0) {
    r = uv_translate_sys_error(errno);
    close(fd);
    return r;
  }
  return fd;
}

/* Binds tcp (initialized, no socket yet) to ss: with uv_tcp_bind in a
 * process that is no worker; in a worker, on a socket of its own with
 * SO_REUSEPORT set before the bind.  Returns 0 or a libuv error. */
int casync__tcp_bind(uv_tcp_t *tcp, const struct sockaddr_storage *ss) {
  int fd, r;
  if (!worker_index) return uv_tcp_bind(tcp, (const struct sockaddr *)ss, 0);
  if ((fd = bound_socket(ss, 1)) < 0) return fd;
  if ((r = uv_tcp_open(tcp, fd)) < 0) close(fd);
  return r;
}

/* --------------------------------------------------------- supervisor */

typedef struct sup {
  int n;
  pid_t *pid;           /* 0: not running */
  uint64_t *started;    /* when it was forked (ns) */
  uint64_t *restart_at; /* 0: none due */
  sigset_t oldmask;
  int reserve_fd;
  casync_ctx *ctx;
} sup;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Forks worker i (1-based).  Returns 1 in the worker, 0 in the supervisor
 * (which retries later when fork fails). */
static int fork_worker(sup *s, int i) {
  pid_t pid, parent = getpid();
  fflush(NULL); /* nothing buffered is written twice */
  pid = fork();
  if (pid < 0) {
    fprintf(stderr, "casync: workers: fork: %s\n", strerror(errno));
    s->restart_at[i - 1] = now_ns() + RESTART_DELAY_NS;
    return 0;
  }
  if (pid > 0) {
    s->pid[i - 1] = pid;
    s->started[i - 1] = now_ns();
    s->restart_at[i - 1] = 0;
    return 0;
  }
  /* the worker */
  setpgid(0, 0);
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(0); /* it died before that was set */
#else
  (void)parent;
#endif
  sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
  close(s->reserve_fd);
  worker_index = i;
  {
    int r = uv_loop_fork(s->ctx->loop);
    if (r < 0) {
      fprintf(stderr, "casync: workers: uv_loop_fork: %s\n", uv_strerror(r));
      _exit(70);
    }
  }
  return 1;
}

static int alive(const sup *s) {
  int i, n = 0;
  for (i = 0; i < s->n; i++) n += s->pid[i] != 0;
  return n;
}

/* Ends the supervisor: by signal sig when it stopped on one, else (every
 * worker exited with 0) with status. */
static void sup_exit(int sig, int status) {
  fflush(NULL);
  if (sig) {
    sigset_t one;
    signal(sig, SIG_DFL);
    sigemptyset(&one);
    sigaddset(&one, sig);
    raise(sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    _exit(128 + sig); /* not reached */
  }
  exit(status);
}

/* The supervisor's life: never returns in the supervisor; returns the
 * worker's index in each worker. */
static int supervise(sup *s) {
  sigset_t set;
  int i, stopping = 0;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  for (i = 1; i <= s->n; i++)
    if (fork_worker(s, i)) return i;
  for (;;) {
    uint64_t now, next = 0;
    struct timespec ts;
    siginfo_t info;
    pid_t pid;
    int st, sig;
    /* the workers that ended */
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
      for (i = 0; i < s->n && s->pid[i] != pid; i++) {}
      if (i == s->n) continue;
      s->pid[i] = 0;
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0) continue; /* done */
      if (stopping) continue;
      if (WIFSIGNALED(st))
        fprintf(stderr,
                "casync: worker %d (pid %d) was killed by signal "
                "%d; starting it again\n",
                i + 1, (int)pid, WTERMSIG(st));
      else
        fprintf(stderr,
                "casync: worker %d (pid %d) exited with status "
                "%d; starting it again\n",
                i + 1, (int)pid, WEXITSTATUS(st));
      s->restart_at[i] = s->started[i] + RESTART_DELAY_NS;
    }
    now = now_ns();
    for (i = 0; !stopping && i < s->n; i++) {
      if (!s->restart_at[i]) continue;
      if (s->restart_at[i] <= now) {
        if (fork_worker(s, i + 1)) return i + 1;
      }
      if (s->restart_at[i] && (!next || s->restart_at[i] < next))
        next = s->restart_at[i];
    }
    if (!alive(s) && (stopping || !next)) sup_exit(stopping, 0);
    if (!next || next <= now) next = now + 1000000000ull;
    ts.tv_sec = (time_t)((next - now) / 1000000000ull);
    ts.tv_nsec = (long)((next - now) % 1000000000ull);
    sig = sigtimedwait(&set, &info, &ts);
    if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
      stopping = sig;
      for (i = 0; i < s->n; i++) {
        s->restart_at[i] = 0;
        if (s->pid[i]) kill(s->pid[i], sig);
      }
    }
  }
}

/* With n > 1: makes this process the supervisor of n workers (see the
 * file comment) listening on ss, for Lua function fname.  Returns 0 only
 * in the workers, with ss's port set (port 0 picks one for all), or a
 * libuv error in the caller when the address cannot be bound; raises when
 * threads already run. */
int casync__workers_start(lua_State *L, casync_ctx *ctx, int n,
                          struct sockaddr_storage *ss, const char *fname) {
  static sup s;
  sigset_t set;
  struct sockaddr_storage bound;
  socklen_t len = sizeof bound;
  if (n <= 1) return 0;
  if (worker_index)
    luaL_error(L, "%s: workers: this process is already a worker", fname);
  if (ctx->hub || ctx->wd)
    luaL_error(L,
               "%s: workers: start them before casync.thread or the "
               "watchdog (a forked process keeps only one thread)",
               fname);
  s.reserve_fd = bound_socket(ss, 1);
  if (s.reserve_fd < 0) return s.reserve_fd;
  if (getsockname(s.reserve_fd, (struct sockaddr *)&bound, &len) == 0) {
    if (ss->ss_family == AF_INET6)
      ((struct sockaddr_in6 *)ss)->sin6_port =
          ((struct sockaddr_in6 *)&bound)->sin6_port;
    else
      ((struct sockaddr_in *)ss)->sin_port =
          ((struct sockaddr_in *)&bound)->sin_port;
  }
  s.n = n;
  s.ctx = ctx;
  s.pid = calloc((size_t)n, sizeof *s.pid);
  s.started = calloc((size_t)n, sizeof *s.started);
  s.restart_at = calloc((size_t)n, sizeof *s.restart_at);
  if (!s.pid || !s.started || !s.restart_at) {
    close(s.reserve_fd);
    luaL_error(L, "not enough memory");
  }
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, &s.oldmask);
  supervise(&s); /* returns in a worker only */
  free(s.pid);
  free(s.started);
  free(s.restart_at);
  return 0;
}

/* casync.worker() -> this process's worker number (1..n) under a server's
 * `workers = n`, or nil in a process that is not a worker */
static int fn_worker(lua_State *L) {
  if (!worker_index) return 0;
  lua_pushinteger(L, worker_index);
  return 1;
}

void casync__workers_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"worker", fn_worker}, {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
}
