/*
 * nexcage-lxc-init: the first program of an lxc-backend container (built static: the container's rootfs
 * may have no libc). It gives LXC the OCI create/start split: LXC starts it as the container's init, it
 * waits on the exec fifo until `nexcage start` opens the other end, then it execs the OCI process.
 *
 *   nexcage-lxc-init DIR      DIR (bind-mounted read-only into the container) holds:
 *     process    NUL-separated: terminal ("1"/"0"), cwd, umask ("-" = keep), argc, argv..., env...
 *                with terminal, stdin is the connected console socket: the pty comes from the
 *                container's devpts and its master is sent there just before the exec
 *     exec.fifo  opened for writing here; blocks until start reads it
 *
 *   nexcage-lxc-init --mount-hook DIR   (lxc.hook.mount: in the container's namespaces before pivot_root,
 *     its rootfs at $LXC_ROOTFS_MOUNT) applies DIR/paths in order: "s FILE VALUE" (linux.sysctl, written
 *     under the container's /proc/sys), "m PATH" (OCI maskedPaths:
 *     /dev/null over a file, a read-only tmpfs over a directory) and "r PATH" (readonlyPaths: read-only
 *     bind onto itself), as runc does; missing paths are skipped.
 */
#include "nx_util.h"
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define MAX_FIELDS 8192

static void
die (const char *what, const char *arg)
{
  fprintf (stderr, "nexcage-lxc-init: %s %s: %s\n", what, arg, strerror (errno));
  _exit (1);
}

static int
mount_hook (const char *dir)
{
  const char *root = getenv ("LXC_ROOTFS_MOUNT");
  if (!root || !*root)
    {
      fprintf (stderr, "nexcage-lxc-init: LXC_ROOTFS_MOUNT is not set\n");
      return 1;
    }
  char path[4096 + 8192], line[8192];
  snprintf (path, sizeof path, "%s/paths", dir);
  FILE *f = fopen (path, "re");
  if (!f)
    return errno == ENOENT ? 0 : (die ("cannot open", path), 1);
  while (fgets (line, sizeof line, f))
    {
      line[strcspn (line, "\n")] = '\0';
      if (strlen (line) < 3 || line[1] != ' ')
        continue;
      if (line[0] == 's')
        {
          char *value = strchr (line + 2, ' ');
          if (!value)
            continue;
          *value++ = '\0';
          snprintf (path, sizeof path, "%s%s", root, line + 2);
          int fd = open (path, O_WRONLY | O_CLOEXEC);
          if (fd < 0 || write (fd, value, strlen (value)) < 0)
            die ("cannot set sysctl", path);
          close (fd);
          continue;
        }
      snprintf (path, sizeof path, "%s%s", root, line + 2);
      struct stat st;
      if (lstat (path, &st) < 0)
        continue;
      if (line[0] == 'm')
        {
          int rc = S_ISDIR (st.st_mode) ? mount ("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
                                         : mount ("/dev/null", path, NULL, MS_BIND, NULL);
          if (rc < 0)
            die ("cannot mask", path);
        }
      else if (line[0] == 'r')
        {
          if (mount (path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
            die ("cannot bind", path);
          /* a remount must repeat the locked flags of the mount it changes */
          struct statvfs sv;
          unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
          if (statvfs (path, &sv) == 0)
            flags |= (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0)
                     | (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
          if (mount (NULL, path, NULL, flags, NULL) < 0)
            die ("cannot make read-only", path);
        }
    }
  fclose (f);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc > 2 && strcmp (argv[1], "--mount-hook") == 0)
    return mount_hook (argv[2]);
  const char *dir = argc > 1 ? argv[1] : "/dev/.nexcage";
  char path[4096];
  snprintf (path, sizeof path, "%s/process", dir);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die ("cannot open", path);
  static char blob[1 << 20];
  long len = 0;
  for (ssize_t n; (n = read (fd, blob + len, sizeof blob - 1 - len)) > 0;)
    len += n;
  close (fd);
  blob[len] = '\0';
  static char *f[MAX_FIELDS + 1];
  int nf = nx_split (blob, len, f, MAX_FIELDS);
  if (nf < 5)
    {
      fprintf (stderr, "nexcage-lxc-init: %s is malformed\n", path);
      _exit (1);
    }
  int tty = strcmp (f[0], "1") == 0;
  const char *cwd = f[1], *mask = f[2];
  int nargs = atoi (f[3]);
  if (nargs < 1 || 4 + nargs > nf)
    {
      fprintf (stderr, "nexcage-lxc-init: %s has no command\n", path);
      _exit (1);
    }
  static char *args[MAX_FIELDS + 1], *envp[MAX_FIELDS + 1];
  memcpy (args, &f[4], sizeof (char *) * (size_t) nargs);
  args[nargs] = NULL;
  int ne = 0;
  for (int i = 4 + nargs; i < nf; i++)
    envp[ne++] = f[i];
  envp[ne] = NULL;

  /* the create/start split: blocks until `start` opens the fifo for reading */
  snprintf (path, sizeof path, "%s/exec.fifo", dir);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    die ("cannot open", path);
  if (write (fd, "0", 1) != 1)
    die ("cannot write", path);
  close (fd);

  if (tty)
    {
      int rc = nx_pty_to_socket (0);
      if (rc < 0)
        {
          errno = -rc;
          die ("cannot set up the terminal", "(is /dev/pts mounted?)");
        }
    }
  if (chdir (cwd) < 0)
    die ("cannot chdir to", cwd);
  if (strcmp (mask, "-") != 0)
    umask ((mode_t) strtol (mask, NULL, 8));
  nx_execvpe (args, envp);
  nx_exec_failed (args[0], errno);
  return 127;
}
