/* Helpers shared by the plain-C libuv peers (the floor). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Value of a "Key:   123 kB" line of /proc/self/status, in bytes (-1 if absent). */
static long proc_status_bytes(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t klen = strlen(key);
  long v = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      v = strtol(line + klen + 1, NULL, 10) * 1024;
      break;
    }
  }
  fclose(f);
  return v;
}

/* Reset VmHWM to the current RSS so start-up peaks do not count. */
static void reset_hwm(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) { fputs("5", f); fclose(f); }
}

static long env_n(const char *name, long dflt) {
  const char *s = getenv(name);
  return (s && *s) ? strtol(s, NULL, 10) : dflt;
}

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

/* Park-Miller "minimal standard" LCG, identical in every peer: exact in doubles. */
static long long lcg_state = 42;
static double lcg_next(void) {
  lcg_state = (lcg_state * 48271) % 2147483647;
  return (double)lcg_state / 2147483647.0;
}
#endif
