/*
 * libnexcage_lxc.so: flat functions over liblxc for bun:ffi (liblxc's container is a struct of function
 * pointers and its attach options a struct; building those from JS is fragile, see NATIVE.md).
 *
 * Every function takes (name, lxcpath): lxcpath must be absolute and canonical, or liblxc's command socket
 * name differs and the container reads STOPPED. Errors come back as -errno with a message in err.
 */
#include "nx_util.h"
#include <grp.h>
#include <lxc/attach_options.h>
#include <lxc/lxccontainer.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define MAX_FIELDS 8192

static void
set_err (char *err, int errlen, const char *fmt, const char *arg)
{
  if (err && errlen > 0)
    snprintf (err, (size_t) errlen, fmt, arg ? arg : "");
}

static struct lxc_container *
open_container (const char *name, const char *lxcpath, char *err, int errlen)
{
  struct lxc_container *c = lxc_container_new (name, lxcpath);
  if (!c)
    set_err (err, errlen, "liblxc cannot open container %s", name);
  return c;
}

const char *
nx_lxc_version (void)
{
  return lxc_get_version ();
}

/* State name into out; returns the init pid (> 0 while it runs), 0 when not running, -errno on error. */
int
nx_lxc_state (const char *name, const char *lxcpath, char *out, int outlen)
{
  struct lxc_container *c = lxc_container_new (name, lxcpath);
  if (!c)
    return -ENOMEM;
  const char *s = c->state (c);
  snprintf (out, (size_t) outlen, "%s", s ? s : "UNKNOWN");
  int pid = c->init_pid (c);
  lxc_container_put (c);
  return pid > 0 ? pid : 0;
}

/* freeze (thaw = 0) or unfreeze (thaw = 1): 0 or -1 */
int
nx_lxc_freeze (const char *name, const char *lxcpath, int thaw, char *err, int errlen)
{
  struct lxc_container *c = open_container (name, lxcpath, err, errlen);
  if (!c)
    return -ENOMEM;
  bool ok = thaw ? c->unfreeze (c) : c->freeze (c);
  if (!ok)
    set_err (err, errlen, thaw ? "liblxc could not thaw %s" : "liblxc could not freeze %s", name);
  lxc_container_put (c);
  return ok ? 0 : -EIO;
}

/* Names of the containers defined under lxcpath, NUL-separated into out; returns the count or -errno. */
int
nx_lxc_list (const char *lxcpath, char *out, int outlen)
{
  char **names = NULL;
  int n = list_defined_containers (lxcpath, &names, NULL);
  if (n < 0)
    return -EIO;
  int off = 0, count = 0;
  for (int i = 0; i < n; i++)
    {
      int l = (int) strlen (names[i]) + 1;
      if (off + l <= outlen)
        {
          memcpy (out + off, names[i], (size_t) l);
          off += l;
          count++;
        }
      free (names[i]);
    }
  free (names);
  return count;
}

/* ---- attach (exec) ---- */

struct attach_payload
{
  char **argv, **envp;
  const char *umask;
  int tty;
};

/* Runs inside the container (liblxc's attached child): become the OCI process. */
static int
attach_exec (void *data)
{
  struct attach_payload *p = data;
  if (p->tty)
    {
      int rc = nx_pty_to_socket (0); /* stdin is the connected console socket */
      if (rc < 0)
        {
          fprintf (stderr, "exec: cannot set up the terminal: %s\n", strerror (-rc));
          _exit (126);
        }
    }
  if (strcmp (p->umask, "-") != 0)
    umask ((mode_t) strtol (p->umask, NULL, 8));
  nx_execvpe (p->argv, p->envp);
  nx_exec_failed (p->argv[0], errno);
  return 127;
}

/*
 * Run a process in the container. blob: NUL-separated cwd, umask ("-" = keep), argc, argv..., env...
 * gids: supplementary groups. With console_socket, the process gets a new pty whose master goes to the
 * socket; otherwise it inherits our stdio. Returns the pid (our child: liblxc clones it with CLONE_PARENT).
 */
int
nx_lxc_attach (const char *name, const char *lxcpath, char *blob, long bloblen, int uid, int gid, const int *gids,
               int ngids, const char *console_socket, char *err, int errlen)
{
  static char *f[MAX_FIELDS + 1];
  int nf = nx_split (blob, bloblen, f, MAX_FIELDS);
  int nargs = nf >= 3 ? atoi (f[2]) : 0;
  if (nargs < 1 || 3 + nargs > nf)
    {
      set_err (err, errlen, "exec: no command to run%s", "");
      return -EINVAL;
    }
  static char *args[MAX_FIELDS + 1], *envp[MAX_FIELDS + 1];
  memcpy (args, &f[3], sizeof (char *) * (size_t) nargs);
  args[nargs] = NULL;
  int ne = 0;
  for (int i = 3 + nargs; i < nf; i++)
    envp[ne++] = f[i];
  envp[ne] = NULL;

  struct lxc_container *c = open_container (name, lxcpath, err, errlen);
  if (!c)
    return -ENOMEM;
  lxc_attach_options_t opts = LXC_ATTACH_OPTIONS_DEFAULT;
  opts.initial_cwd = f[0];
  opts.uid = (uid_t) uid;
  opts.gid = (gid_t) gid;
  opts.env_policy = LXC_ATTACH_CLEAR_ENV;
  opts.log_fd = -EBADF;
  if (ngids > 0)
    {
      opts.attach_flags |= LXC_ATTACH_SETGROUPS;
      opts.groups.size = ngids;
      opts.groups.list = (gid_t *) gids;
    }
  int sock = -1;
  if (console_socket && *console_socket)
    {
      sock = nx_connect_unix (console_socket);
      if (sock < 0)
        {
          set_err (err, errlen, "exec: cannot connect to the console socket %s", console_socket);
          lxc_container_put (c);
          return sock;
        }
      opts.stdin_fd = sock;
    }
  struct attach_payload p = { .argv = args, .envp = envp, .umask = f[1], .tty = sock >= 0 };
  pid_t pid = -1;
  int rc = c->attach (c, attach_exec, &p, &opts, &pid);
  if (sock >= 0)
    close (sock);
  lxc_container_put (c);
  if (rc < 0 || pid <= 0)
    {
      set_err (err, errlen, "liblxc could not attach to container %s (is it running?)", name);
      return -EIO;
    }
  return pid;
}

/* ---- spawning the monitor helper ---- */

/*
 * fork + fexecve the helper in fd (a sealed memfd) with a NUL-separated argv; the child keeps our stdio and
 * nothing else, with default signal handling. Returns the child's pid or -errno. Only async-signal-safe
 * calls between fork and exec: the caller is a multi-threaded runtime.
 */
int
nx_spawn_fd (int fd, char *argblob, long arglen)
{
  static char *argv[64];
  int n = nx_split (argblob, arglen, argv, 63);
  argv[n] = NULL;
  sigset_t all, old;
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  pid_t pid = fork ();
  if (pid == 0)
    {
      for (int s = 1; s < NSIG; s++)
        signal (s, SIG_DFL);
      /* fexecve needs the memfd open; everything else above stdio goes (liblxc would refuse it anyway) */
      int keep = fcntl (fd, F_DUPFD, 3);
      if (keep > 3)
        syscall (SYS_close_range, 3, keep - 1, 0);
      syscall (SYS_close_range, keep + 1, ~0U, 0);
      fcntl (keep, F_SETFD, FD_CLOEXEC);
      sigset_t none;
      sigemptyset (&none);
      pthread_sigmask (SIG_SETMASK, &none, NULL);
      fexecve (keep, argv, environ);
      _exit (127);
    }
  int e = errno;
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  return pid < 0 ? -e : pid;
}

/* Keep an executable in a sealed memfd; returns the fd or -errno (the caller keeps it for nx_spawn_fd). */
int
nx_seal (const char *name, const unsigned char *bytes, long len)
{
  return nx_sealed_memfd (name, bytes, len);
}
