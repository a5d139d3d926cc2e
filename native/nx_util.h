/* Small pieces shared by the native shims and helpers (header-only: each shim is one translation unit). */
#ifndef NX_UTIL_H
#define NX_UTIL_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Copy bytes into a memfd sealed against write, grow, shrink and further seals. fd or -errno. */
static inline int
nx_sealed_memfd (const char *name, const unsigned char *bytes, long len)
{
  int fd = memfd_create (name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -errno;
  for (long off = 0; off < len;)
    {
      ssize_t n = write (fd, bytes + off, (size_t) (len - off));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int e = n < 0 ? errno : EIO;
          close (fd);
          return -e;
        }
      off += n;
    }
  if (fcntl (fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
    {
      int e = errno;
      close (fd);
      return -e;
    }
  return fd;
}

/* execve with a PATH search taken from envp (not from our own environment), as runc does for the
 * container's process. Returns only on failure, with errno set to the most telling error. */
static inline void
nx_execvpe (char *const argv[], char *const envp[])
{
  const char *file = argv[0];
  if (file == NULL || *file == '\0')
    {
      errno = ENOENT;
      return;
    }
  if (strchr (file, '/'))
    {
      execve (file, argv, envp);
      return;
    }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (char *const *e = envp; e && *e; e++)
    if (strncmp (*e, "PATH=", 5) == 0)
      path = *e + 5;
  int saw_eacces = 0;
  char buf[4096];
  for (const char *p = path;; p++)
    {
      const char *end = strchr (p, ':');
      size_t dl = end ? (size_t) (end - p) : strlen (p);
      if (dl + strlen (file) + 2 < sizeof buf)
        {
          memcpy (buf, p, dl);
          size_t o = dl;
          if (o == 0)
            buf[o++] = '.';
          buf[o++] = '/';
          strcpy (buf + o, file);
          execve (buf, argv, envp);
          if (errno == EACCES)
            saw_eacces = 1;
        }
      if (!end)
        break;
      p = end;
    }
  errno = saw_eacces ? EACCES : ENOENT;
}

/* Report a failed exec the way runc's users expect, and exit 127 (not found) or 126 (not executable). */
static inline void
nx_exec_failed (const char *file, int err)
{
  if (err == ENOENT)
    fprintf (stderr, "exec: \"%s\": executable file not found in $PATH\n", file ? file : "");
  else
    fprintf (stderr, "exec: \"%s\": %s\n", file ? file : "", strerror (err));
  _exit (err == ENOENT ? 127 : 126);
}

/* Connect to the AF_UNIX socket at path; the fd (CLOEXEC) or -errno. */
static inline int
nx_connect_unix (const char *path)
{
  int s = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -errno;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof addr.sun_path)
    {
      close (s);
      return -ENAMETOOLONG;
    }
  strcpy (addr.sun_path, path);
  if (connect (s, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      int e = errno;
      close (s);
      return -e;
    }
  return s;
}

/* Send fd over a connected socket (the OCI console socket protocol: one SCM_RIGHTS message). 0 or -errno. */
static inline int
nx_send_fd_on (int s, int fd)
{
  char name[] = "/dev/ptmx";
  struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  memset (&u, 0, sizeof u);
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  struct cmsghdr *c = CMSG_FIRSTHDR (&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &fd, sizeof (int));
  return sendmsg (s, &msg, 0) < 0 ? -errno : 0;
}

/* Allocate a pty from the devpts of the mount namespace we are in (the container's: its name then
 * resolves inside), send the master over sock, and make the slave our stdio and controlling terminal. */
static inline int
nx_pty_to_socket (int sock)
{
  int master = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return -errno;
  char name[128];
  if (unlockpt (master) < 0 || ptsname_r (master, name, sizeof name) != 0)
    {
      int e = errno;
      close (master);
      return -e;
    }
  int slave = open (name, O_RDWR | O_NOCTTY);
  if (slave < 0)
    {
      int e = errno;
      close (master);
      return -e;
    }
  int rc = nx_send_fd_on (sock, master);
  close (master);
  if (rc < 0)
    return rc;
  if (sock > 2)
    close (sock);
  setsid ();
  for (int i = 0; i < 3; i++)
    dup2 (slave, i);
  if (slave > 2)
    close (slave);
  return ioctl (0, TIOCSCTTY, 0) < 0 ? -errno : 0;
}

/* Split a NUL-separated blob into fields (pointers into blob); returns the count, at most max. */
static inline int
nx_split (char *blob, long len, char **out, int max)
{
  int n = 0;
  for (long i = 0; i < len && n < max;)
    {
      out[n++] = blob + i;
      i += (long) strlen (blob + i) + 1;
    }
  return n;
}
#endif
