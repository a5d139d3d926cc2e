/* nexcage's libcrun shim: flat functions over libcrun for bun:ffi.
 *
 * libcrun assumes a single-threaded process that owns its signal mask and its cwd; Bun is neither. So every
 * operation runs in a fork()ed child: it resets signals, chdir()s into the bundle, calls libcrun, writes a
 * fixed-size result into a pipe and _exit()s. The parent waits for that one pid (never -1: Bun reaps its own
 * children) and only then reads the pipe, so a container process that inherited the pipe can't block us.
 *
 * The two operations that start processes inside a container (create, exec) don't run libcrun in the
 * forked image of nexcage itself: the child fexecve()s a small helper (this file built with NX_HELPER)
 * from a sealed memfd. A container process can then only ever see the sealed copy through /proc/self/exe,
 * never the nexcage binary on disk (CVE-2019-5736); crun does the same for itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libcrun_abi.h"
#include "nx_util.h"

/* libcrun.a is built as PIE: its references to these two libc data symbols use PC32 relocations that a
 * shared object can't have. build.ts renames them in a copy of the archive to these hidden variables. */
__attribute__ ((visibility ("hidden"))) FILE *nx_crun_stderr;
__attribute__ ((visibility ("hidden"))) char **nx_crun_environ;
extern char **environ;

#ifndef NX_LIBCRUN_VERSION
#  define NX_LIBCRUN_VERSION "unknown"
#endif

enum
{
  NX_NO_PIVOT = 1,
  NX_NO_NEW_KEYRING = 2,
  NX_SYSTEMD_CGROUP = 4,
  NX_DETACH = 8,
  NX_ALL = 16,
  NX_FORCE = 32,
};

enum op
{
  /* numbered: src/native/crun.ts passes these */
  OP_CREATE = 0,
  OP_START = 1,
  OP_KILL = 2,
  OP_DELETE = 3,
  OP_PAUSE = 4,
  OP_RESUME = 5,
  OP_EXEC = 6,
  OP_UPDATE = 7,
};

struct request
{
  enum op op;
  const char *state_root, *id, *bundle, *console_socket, *pid_file, *path, *content;
  int preserve_fds, flags, signal;
};

struct result
{
  int rc;
  int status; /* errno from libcrun, 0 if none */
  char msg[3072];
};

static void
set_error (struct result *r, libcrun_error_t err, const char *fallback)
{
  r->rc = -1;
  r->status = err ? err->status : 0;
  snprintf (r->msg, sizeof (r->msg), "%s", err && err->msg ? err->msg : fallback);
  if (err && err->status && err->msg)
    {
      size_t n = strlen (r->msg);
      snprintf (r->msg + n, sizeof (r->msg) - n, ": %s", strerror (err->status));
    }
}

/* Runs in the child only. */
static void
do_request (const struct request *q, struct result *r)
{
  libcrun_error_t err = NULL;
  libcrun_context_t ctx;
  memset (&ctx, 0, sizeof (ctx));
  ctx.state_root = q->state_root;
  ctx.id = q->id;
  ctx.bundle = q->bundle ? q->bundle : ".";
  ctx.console_socket = q->console_socket;
  ctx.pid_file = q->pid_file;
  ctx.notify_socket = getenv ("NOTIFY_SOCKET");
  ctx.preserve_fds = q->preserve_fds;
  ctx.fifo_exec_wait_fd = -1;
  ctx.systemd_cgroup = q->flags & NX_SYSTEMD_CGROUP;
  ctx.detach = q->flags & NX_DETACH;
  ctx.no_new_keyring = q->flags & NX_NO_NEW_KEYRING;
  ctx.no_pivot = q->flags & NX_NO_PIVOT;
  if (getenv ("LISTEN_FDS"))
    {
      ctx.listen_fds = (int) strtol (getenv ("LISTEN_FDS"), NULL, 10);
      ctx.preserve_fds += ctx.listen_fds;
    }
  if (libcrun_init_logging (&ctx.output_handler, &ctx.output_handler_arg, q->id, NULL, &err) < 0)
    return set_error (r, err, "cannot initialise libcrun logging");

  char sig[16];
  snprintf (sig, sizeof (sig), "%d", q->signal);
  int ret = 0;
  switch (q->op)
    {
    case OP_CREATE:
      {
        if (chdir (q->bundle) < 0)
          {
            r->rc = -1;
            r->status = errno;
            snprintf (r->msg, sizeof (r->msg), "chdir `%s`: %s", q->bundle, strerror (errno));
            return;
          }
        libcrun_container_t *c = libcrun_container_load_from_file ("config.json", &err);
        if (c == NULL)
          return set_error (r, err, "error loading config.json");
        ret = libcrun_container_create (&ctx, c, 0, &err);
        break;
      }
    case OP_START:
      ret = libcrun_container_start (&ctx, q->id, &err);
      break;
    case OP_KILL:
      ret = q->flags & NX_ALL ? libcrun_container_killall (&ctx, q->id, sig, &err) : libcrun_container_kill (&ctx, q->id, sig, &err);
      break;
    case OP_DELETE:
      ret = libcrun_container_delete (&ctx, NULL, q->id, q->flags & NX_FORCE, &err);
      break;
    case OP_PAUSE:
      ret = libcrun_container_pause (&ctx, q->id, &err);
      break;
    case OP_RESUME:
      ret = libcrun_container_unpause (&ctx, q->id, &err);
      break;
    case OP_EXEC:
      {
        struct libcrun_container_exec_options_s o;
        memset (&o, 0, sizeof (o));
        o.struct_size = sizeof (o);
        o.path = q->path;
        ret = libcrun_container_exec_with_options (&ctx, q->id, &o, &err);
        break;
      }
    case OP_UPDATE:
      ret = libcrun_container_update (&ctx, q->id, q->content, strlen (q->content), &err);
      break;
    }
  if (ret < 0)
    return set_error (r, err, "libcrun failed");
  r->rc = ret; /* exec without detach: the process's exit status */
}

/* 0 when the whole result went out; it fits in the pipe buffer, so this never blocks */
static int
write_result (int fd, const struct result *r)
{
  return write (fd, r, sizeof (*r)) == (ssize_t) sizeof (*r) ? 0 : 1;
}

/* Do the request in this process (the forked child, or the helper) and send the result to fd. */
static int
serve (const struct request *q, int fd)
{
  struct result r;
  memset (&r, 0, sizeof (r));
  r.rc = -1;
  nx_crun_stderr = stderr;
  nx_crun_environ = environ;
  do_request (q, &r);
  fflush (stdout);
  fflush (stderr);
  return write_result (fd, &r);
}

/* sealed memfd holding the helper executable; -1 until nx_crun_set_helper */
static int helper_fd = -1;

static const char *
arg_or_empty (const char *s)
{
  return s ? s : "";
}

/* Child side of create/exec: hand the request to the sealed helper. Only returns on failure. */
static void
exec_helper (const struct request *q, int result_fd)
{
  /* above the fds the container is to inherit; without CLOEXEC so the helper gets it */
  int rfd = fcntl (result_fd, F_DUPFD, 3 + q->preserve_fds + 8);
  if (rfd < 0)
    return;
  char num[5][24];
  snprintf (num[0], sizeof num[0], "%d", rfd);
  snprintf (num[1], sizeof num[1], "%d", (int) q->op);
  snprintf (num[2], sizeof num[2], "%d", q->preserve_fds);
  snprintf (num[3], sizeof num[3], "%d", q->flags);
  snprintf (num[4], sizeof num[4], "%d", q->signal);
  char *argv[] = { "nexcage-crun-helper", num[0], num[1], (char *) arg_or_empty (q->state_root), (char *) arg_or_empty (q->id),
                   (char *) arg_or_empty (q->bundle), (char *) arg_or_empty (q->console_socket),
                   (char *) arg_or_empty (q->pid_file), (char *) arg_or_empty (q->path), num[2], num[3], num[4], NULL };
  fexecve (helper_fd, argv, environ);
}

static int
in_child (const struct request *q, int *status, char *errbuf, int errlen)
{
  int fds[2];
  struct result r;
  memset (&r, 0, sizeof (r));
  *status = 0;
  if (pipe2 (fds, O_CLOEXEC) < 0)
    {
      *status = errno;
      snprintf (errbuf, errlen, "pipe: %s", strerror (errno));
      return -1;
    }
  pid_t pid = fork ();
  if (pid < 0)
    {
      *status = errno;
      snprintf (errbuf, errlen, "fork: %s", strerror (errno));
      close (fds[0]);
      close (fds[1]);
      return -1;
    }
  if (pid == 0)
    {
      /* a clean, single-threaded process for libcrun: default signal dispositions, nothing blocked */
      sigset_t none;
      sigemptyset (&none);
      for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
          signal (s, SIG_DFL);
      sigprocmask (SIG_SETMASK, &none, NULL);
      close (fds[0]);
      if ((q->op == OP_CREATE || q->op == OP_EXEC) && helper_fd >= 0)
        {
          exec_helper (q, fds[1]);
          r.rc = -1;
          r.status = errno;
          snprintf (r.msg, sizeof (r.msg), "cannot start the libcrun helper: %s", strerror (errno));
          _exit (write_result (fds[1], &r));
        }
      _exit (serve (q, fds[1]));
    }
  close (fds[1]);
  int wstatus = 0;
  while (waitpid (pid, &wstatus, 0) < 0)
    if (errno != EINTR)
      break;
  fcntl (fds[0], F_SETFL, O_NONBLOCK);
  size_t got = 0;
  while (got < sizeof (r))
    {
      ssize_t n = read (fds[0], (char *) &r + got, sizeof (r) - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      got += (size_t) n;
    }
  close (fds[0]);
  if (got != sizeof (r))
    {
      if (WIFSIGNALED (wstatus))
        snprintf (errbuf, errlen, "libcrun child killed by signal %d", WTERMSIG (wstatus));
      else
        snprintf (errbuf, errlen, "libcrun child exited with status %d without a result", WEXITSTATUS (wstatus));
      return -1;
    }
  if (r.rc < 0)
    {
      *status = r.status;
      snprintf (errbuf, errlen, "%s", r.msg);
    }
  return r.rc;
}

/* ---- exported API: >= 0 on success (exec: the exit status), -1 with errbuf and *status set ---- */

int
nx_crun_create (const char *state_root, const char *id, const char *bundle, const char *console_socket,
                const char *pid_file, int preserve_fds, int flags, int *status, char *errbuf, int errlen)
{
  struct request q = { .op = OP_CREATE, .state_root = state_root, .id = id, .bundle = bundle,
                       .console_socket = console_socket, .pid_file = pid_file, .preserve_fds = preserve_fds,
                       .flags = flags | NX_DETACH };
  return in_child (&q, status, errbuf, errlen);
}

int
nx_crun_simple (int op, const char *state_root, const char *id, int signal_, int flags, int *status, char *errbuf,
                int errlen)
{
  if (op != OP_START && op != OP_KILL && op != OP_DELETE && op != OP_PAUSE && op != OP_RESUME)
    {
      snprintf (errbuf, errlen, "nx_crun_simple: bad op %d", op);
      return -1;
    }
  struct request q = { .op = (enum op) op, .state_root = state_root, .id = id, .signal = signal_, .flags = flags };
  return in_child (&q, status, errbuf, errlen);
}

int
nx_crun_exec (const char *state_root, const char *id, const char *process_path, const char *console_socket,
              const char *pid_file, int preserve_fds, int flags, int *status, char *errbuf, int errlen)
{
  struct request q = { .op = OP_EXEC, .state_root = state_root, .id = id, .path = process_path,
                       .console_socket = console_socket, .pid_file = pid_file, .preserve_fds = preserve_fds,
                       .flags = flags };
  return in_child (&q, status, errbuf, errlen);
}

int
nx_crun_update (const char *state_root, const char *id, const char *content, int flags, int *status, char *errbuf,
                int errlen)
{
  struct request q = { .op = OP_UPDATE, .state_root = state_root, .id = id, .content = content, .flags = flags };
  return in_child (&q, status, errbuf, errlen);
}

const char *
nx_crun_version (void)
{
  return NX_LIBCRUN_VERSION;
}

/* Keep the helper executable in a sealed memfd (no write, grow, shrink or further seals). 0 or -errno. */
int
nx_crun_set_helper (const unsigned char *bytes, long len)
{
  if (helper_fd >= 0)
    return 0;
  int fd = nx_sealed_memfd ("nexcage-crun-helper", bytes, len);
  if (fd < 0)
    return fd;
  helper_fd = fd;
  return 0;
}

#ifdef NX_HELPER
/* The helper: argv as exec_helper builds it; the result goes to the inherited pipe. */
static const char *
null_if_empty (const char *s)
{
  return s && *s ? s : NULL;
}

int
main (int argc, char **argv)
{
  if (argc != 12)
    return 2;
  struct request q;
  memset (&q, 0, sizeof (q));
  int rfd = atoi (argv[1]);
  q.op = (enum op) atoi (argv[2]);
  q.state_root = null_if_empty (argv[3]);
  q.id = null_if_empty (argv[4]);
  q.bundle = null_if_empty (argv[5]);
  q.console_socket = null_if_empty (argv[6]);
  q.pid_file = null_if_empty (argv[7]);
  q.path = null_if_empty (argv[8]);
  q.preserve_fds = atoi (argv[9]);
  q.flags = atoi (argv[10]);
  q.signal = atoi (argv[11]);
  if (q.op != OP_CREATE && q.op != OP_EXEC)
    return 2;
  fcntl (rfd, F_SETFD, FD_CLOEXEC); /* the container's processes must not inherit it */
  return serve (&q, rfd);
}
#endif
