/* signame.c: signals by name and number, for every layer (process.c,
 * signal.c, debug.c). */
#include <signal.h>
#include <string.h>
#include <strings.h>
#include "context.h"

#define MAX_SIG 65

static const struct {
  const char *name;
  int num;
} sig_names[] = {
    {"SIGHUP", SIGHUP},       {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},
    {"SIGILL", SIGILL},       {"SIGTRAP", SIGTRAP}, {"SIGABRT", SIGABRT},
    {"SIGBUS", SIGBUS},       {"SIGFPE", SIGFPE},   {"SIGKILL", SIGKILL},
    {"SIGUSR1", SIGUSR1},     {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2},
    {"SIGPIPE", SIGPIPE},     {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM},
    {"SIGCHLD", SIGCHLD},     {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP},
    {"SIGTSTP", SIGTSTP},     {"SIGTTIN", SIGTTIN}, {"SIGTTOU", SIGTTOU},
    {"SIGURG", SIGURG},       {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ},
    {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH},
    {"SIGIO", SIGIO},         {"SIGSYS", SIGSYS},   {NULL, 0}};

/* The name of signal signum ("SIGTERM"), NULL if it has none here. */
const char *casync__signal_name(int signum) {
  int i;
  for (i = 0; sig_names[i].name; i++)
    if (sig_names[i].num == signum) return sig_names[i].name;
  return NULL;
}

/* The signal at arg: a number (1-64) or a name, with or without "SIG",
 * in any case ("SIGTERM", "term"); raises otherwise. */
int casync__signal_number(lua_State *L, int arg) {
  int i;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, arg);
    luaL_argcheck(L, n > 0 && n < MAX_SIG, arg, "no such signal");
    return (int)n;
  }
  if (lua_type(L, arg) == LUA_TSTRING) {
    const char *s = lua_tostring(L, arg);
    for (i = 0; sig_names[i].name; i++)
      if (!strcasecmp(s, sig_names[i].name) ||
          !strcasecmp(s, sig_names[i].name + 3))
        return sig_names[i].num;
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown signal '%s'", s));
  }
  return luaL_typeerror(L, arg, "signal number or name");
}
