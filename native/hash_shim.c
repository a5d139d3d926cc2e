/*
 * libnexcage_hash.so: SHA-256 of many files at once, streamed (1 MiB reads) and in parallel (one thread per
 * core, each taking the next file), with OpenSSL's SHA-256 (SHA-NI where the CPU has it). Snapshot manifests
 * and `snapshot verify` call it on batches of files so the caller can show progress between batches.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1 << 20)

struct job
{
  char **paths;
  int n;
  unsigned char *out;  /* n * 32 */
  long long *sizes;    /* bytes read, or -errno */
  atomic_int next;
};

static void
hash_one (const char *path, unsigned char *digest, long long *size, unsigned char *buf)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    {
      *size = -errno;
      return;
    }
  posix_fadvise (fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL);
  long long total = 0;
  for (;;)
    {
      ssize_t r = read (fd, buf, CHUNK);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          total = -errno;
          break;
        }
      if (r == 0)
        break;
      EVP_DigestUpdate (ctx, buf, (size_t) r);
      total += r;
    }
  unsigned int len = 32;
  EVP_DigestFinal_ex (ctx, digest, &len);
  EVP_MD_CTX_free (ctx);
  close (fd);
  *size = total;
}

static void *
worker (void *arg)
{
  struct job *j = arg;
  unsigned char *buf = malloc (CHUNK);
  if (!buf)
    return NULL;
  for (int i; (i = atomic_fetch_add (&j->next, 1)) < j->n;)
    hash_one (j->paths[i], j->out + (size_t) i * 32, &j->sizes[i], buf);
  free (buf);
  return NULL;
}

/*
 * blob: n NUL-terminated paths. out: n*32 digest bytes. sizes: n entries, the bytes hashed or -errno.
 * threads: how many (>= 1). Returns 0, or -errno if it could not start.
 */
int
nx_sha256_files (char *blob, int n, unsigned char *out, long long *sizes, int threads)
{
  char **paths = malloc (sizeof (char *) * (size_t) (n > 0 ? n : 1));
  if (!paths)
    return -ENOMEM;
  char *p = blob;
  for (int i = 0; i < n; i++)
    {
      paths[i] = p;
      p += strlen (p) + 1;
    }
  struct job j = { .paths = paths, .n = n, .out = out, .sizes = sizes };
  atomic_init (&j.next, 0);
  if (threads > n)
    threads = n > 0 ? n : 1;
  pthread_t tids[64];
  if (threads > 64)
    threads = 64;
  int started = 0;
  for (int t = 1; t < threads; t++)
    if (pthread_create (&tids[started], NULL, worker, &j) == 0)
      started++;
  worker (&j); /* this thread works too */
  for (int t = 0; t < started; t++)
    pthread_join (tids[t], NULL);
  free (paths);
  return 0;
}
