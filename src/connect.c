/* connect.c: connecting a TCP stream to a host the way browsers do: the
 * name is resolved (a numeric address is used as it is), and its
 * addresses are raced by Happy Eyeballs (RFC 8305): ordered as the system
 * sorts them (RFC 6724) with the families interleaved, each attempt
 * started 250 ms after the one before or at once when that one fails; the
 * first to connect wins and every other is closed.  One deadline bounds
 * the whole of it; a cancellation closes every attempt.
 *
 * The race is a userdata on the waiting task's stack, and so are the
 * streams of its attempts, all made before it starts (a TCP handle without
 * a socket is cheap): libuv's callbacks then only connect and close.
 * Whenever the race ends it closes every stream but the winner's, so a
 * callback that finds its stream closing never touches the race again.
 */
#include <stdio.h>
#include <string.h>
#include "io.h"

#define HE_DELAY 0.25 /* seconds: RFC 8305's Connection Attempt Delay */
#define HE_MAX 16     /* addresses tried at most */

/* The stack above base while connecting: */
#define R_RACE 1    /* the race */
#define R_LOOKUP 2  /* the name's lookup, or nil */
#define R_STREAMS 3 /* the attempts' streams, by index + 1 */

typedef struct he_race {
  casync_tnode stagger; /* the next attempt's start */
  casync_ctx *ctx;
  casync_task *task; /* the waiting task, NULL once it is over */
  int base;
  int naddr, next, running, winner, lasterr, port;
  double timeout;
  uint64_t deadline;
  lua_KFunction k; /* the caller's continuation */
  lua_KContext kc;
  casync_stream *att[HE_MAX];
  struct sockaddr_storage addr[HE_MAX];
  char host[256]; /* as given, for errors */
} he_race;

static int race_k(lua_State *L, int status, lua_KContext kc);

/* Ends the race: no more attempts; every stream but the winner's closed. */
static void race_end(he_race *r) {
  int i;
  r->task = NULL;
  if (r->stagger.list) casync__timer_remove(r->ctx, &r->stagger);
  for (i = 0; i < r->naddr; i++)
    if (r->att[i] && i != r->winner) {
      casync__stream_close(r->att[i], 1);
      r->att[i] = NULL;
    }
}

static void on_attempt(uv_connect_t *req, int status);

/* Starts the next attempt that can start; arms the timer for the one
 * after it. */
static void start_next(he_race *r) {
  if (r->stagger.list) casync__timer_remove(r->ctx, &r->stagger);
  while (r->next < r->naddr) {
    int i = r->next++, e;
    casync_stream *s = r->att[i];
    s->creq.data = r;
    e = uv_tcp_connect(&s->creq, &s->u.tcp,
                       (const struct sockaddr *)&r->addr[i], on_attempt);
    if (e == 0) {
      r->running++;
      if (r->next < r->naddr) casync__timer_add(r->ctx, &r->stagger, HE_DELAY);
      return;
    }
    r->lasterr = e; /* EAFNOSUPPORT, EMFILE ...: the next one now */
    casync__stream_close(s, 1);
    r->att[i] = NULL;
  }
}

static void on_stagger(casync_ctx *lp, casync_tnode *n) {
  he_race *r = container_of(n, he_race, stagger);
  (void)lp;
  if (r->task) start_next(r);
}

static void on_attempt(uv_connect_t *req, int status) {
  casync_stream *s = container_of(req, casync_stream, creq);
  he_race *r = req->data;
  casync_task *t;
  int i;
  if (!s->hd.ctx->alive || uv_is_closing(&s->u.h)) return; /* race over */
  for (i = 0; i < r->naddr && r->att[i] != s; i++) {}
  r->running--;
  if (status == 0) r->winner = i;
  else {
    r->lasterr = status;
    casync__stream_close(s, 1);
    r->att[i] = NULL;
    start_next(r);
    if (r->running > 0) return;
  }
  t = r->task;
  race_end(r);
  casync__wake(r->ctx, t, WAKE_OK);
}

static int race_cancel(casync_ctx *lp, casync_task *t, int why) {
  he_race *r = t->wait_obj;
  (void)lp;
  (void)why;
  r->winner = -1;
  race_end(r);
  return 1;
}

/* A won race hands over its stream: kept (closed on a late cancel). */
static const casync_wait_kind race_wait = {
    "connect", "connect", race_cancel, CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL};

/* Leaves the stack as the caller had it plus the results, and goes on in
 * the caller's continuation. */
static int race_done(lua_State *L, he_race *r, int nres) {
  lua_KFunction k = r->k;
  lua_KContext kc = r->kc;
  int base = r->base, i;
  for (i = 0; i < 3; i++) lua_remove(L, base + 1);
  (void)nres;
  return k(L, LUA_OK, kc);
}

/* Pushes the error of a failed connect: err (a libuv error) or, when err
 * is 0, a timeout; its message names the address as given ("connect
 * example.com:80: connection refused", as Go's "dial tcp ..." does) and
 * it has fields host and port. */
static void push_connect_error(lua_State *L, he_race *r, int err) {
  lua_pushfstring(L, strchr(r->host, ':') ? "connect [%s]:%d" : "connect %s:%d",
                  r->host, r->port);
  if (err) casync__error_uv(L, lua_tostring(L, -1), err);
  else casync__timeout_error(L, lua_tostring(L, -1), r->timeout);
  lua_remove(L, -2);
  lua_pushstring(L, r->host);
  lua_setfield(L, -2, "host");
  lua_pushinteger(L, r->port);
  lua_setfield(L, -2, "port");
}

static int race_fail(lua_State *L, he_race *r, int err) {
  lua_pushnil(L);
  push_connect_error(L, r, err);
  return race_done(L, r, 2);
}

/* Makes a stream per address, starts the first attempt and waits. */
static int race_start(lua_State *L, casync_task *t, he_race *r) {
  int i, e = 0;
  lua_createtable(L, r->naddr, 0); /* R_STREAMS */
  for (i = 0; i < r->naddr; i++) {
    if (!casync__stream_new(L, r->ctx, CASYNC_TCP, &e)) {
      lua_pop(L, 1);
      r->naddr = i;
      break;
    }
    r->att[i] = casync__stream_of(L, -1);
    lua_rawseti(L, r->base + R_STREAMS, i + 1);
  }
  if (r->naddr == 0) return race_fail(L, r, e);
  r->task = t;
  r->winner = -1;
  r->lasterr = UV_EAI_NONAME;
  start_next(r);
  if (r->running == 0) { /* none could start */
    race_end(r);
    return race_fail(L, r, r->lasterr);
  }
  return casync__park(L, t, &race_wait, r, r->deadline, race_k,
                      (lua_KContext)r->base);
}

static int race_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  he_race *r;
  casync_stream *s;
  (void)status;
  CASYNC_RESUMED(L, t, kc, race_k);
  r = lua_touserdata(L, (int)kc + R_RACE);
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L);
    push_connect_error(L, r, 0);
    return race_done(L, r, 2);
  }
  if (r->winner < 0) return race_fail(L, r, r->lasterr);
  s = r->att[r->winner];
  if (t->flags & TF_CANCEL_PENDING) { /* connected: no leak on cancel */
    casync__stream_close(s, 1);
    return casync__raise_cancel(L, t);
  }
  uv_tcp_nodelay(&s->u.tcp, 1);
  lua_rawgeti(L, r->base + R_STREAMS, r->winner + 1);
  return race_done(L, r, 1);
}

/* Adds ai's address (port set) unless it is there already. */
static void add_addr(he_race *r, const struct sockaddr *sa, int port) {
  struct sockaddr_storage ss;
  size_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                         : sizeof(struct sockaddr_in);
  int i;
  if (r->naddr >= HE_MAX) return;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, sa, len);
  if (ss.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
  else ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
  for (i = 0; i < r->naddr; i++)
    if (memcmp(&r->addr[i], &ss, len) == 0) return;
  r->addr[r->naddr++] = ss;
}

static int lookup_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  he_race *r;
  struct addrinfo *list, *ai, *fam[2] = {NULL, NULL};
  int st, port, first, turn;
  (void)status;
  CASYNC_RESUMED(L, t, kc, lookup_k);
  r = lua_touserdata(L, (int)kc + R_RACE);
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L); /* R_STREAMS, for race_done */
    lua_pushnil(L);
    push_connect_error(L, r, 0);
    return race_done(L, r, 2);
  }
  list = casync__dns_result(L, (int)kc + R_LOOKUP, &st);
  port = r->port;
  /* interleave the families, the first as the system sorted them */
  for (ai = list; ai && !fam[0]; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) fam[0] = ai;
  first = fam[0] ? fam[0]->ai_family : AF_INET;
  for (ai = list; ai && !fam[1]; ai = ai->ai_next)
    if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
        ai->ai_family != first)
      fam[1] = ai;
  for (turn = 0; fam[0] || fam[1]; turn ^= 1) {
    int f = turn ? (first == AF_INET ? AF_INET6 : AF_INET) : first;
    if (!fam[turn]) continue;
    add_addr(r, fam[turn]->ai_addr, port);
    for (ai = fam[turn]->ai_next; ai && ai->ai_family != f; ai = ai->ai_next) {}
    fam[turn] = ai;
  }
  if (r->naddr == 0) {
    lua_pushnil(L); /* R_STREAMS */
    return race_fail(L, r, st < 0 ? st : UV_EAI_NONAME);
  }
  return race_start(L, t, r);
}

/* Connects a new TCP stream to host:port (a name or a numeric address),
 * racing the name's addresses (RFC 8305), within deadline (timeout: the
 * seconds it stands for, for the error).  Suspends t; then k(kc) runs with
 * the stack as it was plus the connected stream, or plus nil and the
 * error.  A cancellation closes every attempt and is raised. */
int casync__tcp_connect(lua_State *L, casync_task *t, const char *host,
                        int port, uint64_t deadline, double timeout,
                        lua_KFunction k, lua_KContext kc) {
  casync_ctx *ctx = CASYNC_CTX(L);
  he_race *r;
  char service[16];
  int base = lua_gettop(L);
  r = lua_newuserdatauv(L, sizeof *r, 0); /* R_RACE */
  memset(r, 0, sizeof *r);
  r->stagger.fire = on_stagger;
  r->ctx = ctx;
  r->base = base;
  r->deadline = deadline;
  r->timeout = timeout;
  r->k = k;
  r->kc = kc;
  r->port = port;
  snprintf(r->host, sizeof r->host, "%s", host);
  if (casync__net_parse_ip(host, port, &r->addr[0])) {
    r->naddr = 1;
    lua_pushnil(L); /* R_LOOKUP */
    return race_start(L, t, r);
  }
  snprintf(service, sizeof service, "%d", port);
  return casync__dns_lookup(L, t, host, service, AF_UNSPEC, deadline, lookup_k,
                            (lua_KContext)base);
}
