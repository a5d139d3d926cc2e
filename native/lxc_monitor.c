/*
 * nexcage-lxc-monitor NAME LXCPATH CONSOLE_SOCKET|"" [TYPE=NSPATH ...]
 *
 * Starts an LXC container in the foreground (liblxc's monitor is this process) and exits the way the
 * container's init did: with its exit code, or killed by the same signal. nexcage writes this pid into the
 * caller's pid file, so conmon or containerd-shim (subreapers) reap the container's real exit status,
 * which a daemonized LXC start would lose. With CONSOLE_SOCKET the container's stdin is that socket,
 * connected (its init allocates the pty inside); otherwise it inherits our stdio (lxc.console.path = none). Each TYPE=NSPATH
 * (net, ipc, uts, pid, cgroup) is joined here first; the config keeps that namespace (lxc.namespace.keep),
 * so the container inherits it: liblxc's own lxc.namespace.share takes pids and container names, not paths.
 */
#include "nx_util.h"
#include <lxc/lxccontainer.h>
#include <signal.h>
#include <sched.h>
#include <sys/wait.h>

static int
join_namespace (const char *spec)
{
  static const struct
  {
    const char *type;
    int flag;
  } types[] = { { "net", CLONE_NEWNET }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS }, { "pid", CLONE_NEWPID }, { "cgroup", CLONE_NEWCGROUP } };
  const char *eq = strchr (spec, '=');
  for (size_t i = 0; eq && i < sizeof types / sizeof types[0]; i++)
    if (strlen (types[i].type) == (size_t) (eq - spec) && strncmp (spec, types[i].type, (size_t) (eq - spec)) == 0)
      {
        int fd = open (eq + 1, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns (fd, types[i].flag) < 0)
          {
            fprintf (stderr, "nexcage-lxc-monitor: cannot join namespace %s: %s\n", spec, strerror (errno));
            return -1;
          }
        close (fd);
        return 0;
      }
  fprintf (stderr, "nexcage-lxc-monitor: unsupported namespace %s\n", spec);
  return -1;
}

int
main (int argc, char **argv)
{
  if (argc < 4)
    {
      fprintf (stderr, "usage: nexcage-lxc-monitor NAME LXCPATH CONSOLE_SOCKET [TYPE=NSPATH ...]\n");
      return 125;
    }
  for (int i = 4; i < argc; i++)
    if (join_namespace (argv[i]) < 0)
      return 125;
  if (*argv[3])
    {
      /* the init gets the connected socket as stdin and sends the pty it opens inside the container */
      int s = nx_connect_unix (argv[3]);
      if (s < 0)
        {
          fprintf (stderr, "nexcage-lxc-monitor: console socket %s: %s\n", argv[3], strerror (-s));
          return 125;
        }
      dup2 (s, 0);
      close (s);
    }
  struct lxc_container *c = lxc_container_new (argv[1], argv[2]);
  if (!c || !c->is_defined (c))
    {
      fprintf (stderr, "nexcage-lxc-monitor: container %s is not defined under %s\n", argv[1], argv[2]);
      return 125;
    }
  c->want_daemonize (c, false);
  bool ok = c->start (c, 0, NULL);
  int status = c->error_num;
  if (!ok && status == 0)
    return 125;
  if (WIFSIGNALED (status))
    {
      int sig = WTERMSIG (status);
      signal (sig, SIG_DFL);
      sigset_t s;
      sigemptyset (&s);
      sigaddset (&s, sig);
      sigprocmask (SIG_UNBLOCK, &s, NULL);
      raise (sig);
      return 128 + sig;
    }
  return WIFEXITED (status) ? WEXITSTATUS (status) : 125;
}
