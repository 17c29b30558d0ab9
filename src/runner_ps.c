/* runner_ps.c: `casync ps PID`, the runner's command that asks a running
 * casync program for its task tree (asyncio 3.14's `python -m asyncio ps`,
 * with what each task waits on).  The program must be in debug mode
 * (CASYNC_DEBUG=1, or casync.debug{socket = true}): debug.c then listens
 * on a Unix socket named after its pid and writes the dump to whoever
 * connects.  Plain POSIX here: no loop, no Lua state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "scheduler.h"

/* Is argv[1] "ps" with a process id after it? */
int casync__ps_wanted(int argc, char **argv) {
  return argc >= 2 && strcmp(argv[1], "ps") == 0 &&
         (argc < 3 || strspn(argv[2], "0123456789") == strlen(argv[2]));
}

/* Prints the task tree of process argv[2]; returns the exit status. */
int casync__ps_main(const char *progname, int argc, char **argv) {
  struct sockaddr_un sa;
  char buf[65536];
  ssize_t n;
  long pid;
  int fd;
  if (argc != 3 || !*argv[2]) {
    fprintf(stderr, "usage: %s ps PID\n", progname);
    return 2;
  }
  pid = strtol(argv[2], NULL, 10);
  if (pid <= 0 || pid > 0x7fffffff) {
    fprintf(stderr, "%s ps: '%s' is not a process id\n", progname, argv[2]);
    return 2;
  }
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  casync__ps_path(sa.sun_path, sizeof sa.sun_path, (int)pid);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    fprintf(stderr,
            "%s ps: cannot reach process %ld at %s (%s): is it a casync "
            "program in debug mode (CASYNC_DEBUG=1)?\n",
            progname, pid, sa.sun_path, strerror(e));
    if (fd >= 0) close(fd);
    return 1;
  }
  while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0 && fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) break;
  close(fd);
  fflush(stdout);
  return n < 0 ? 1 : 0;
}
