/* The part of libcrun 1.8.x's ABI that nexcage calls. Debian ships libcrun.a without headers, so these are
 * our own declarations of the public structs and functions we use; the layouts must match libcrun 1.8.1
 * (src/libcrun/container.h, error.h). build.ts checks the installed crun version before linking. */
#ifndef NX_LIBCRUN_ABI_H
#define NX_LIBCRUN_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct libcrun_error_s
{
  int status; /* errno, 0 when none */
  char *msg;
};
typedef struct libcrun_error_s *libcrun_error_t;

typedef void (*crun_output_handler) (int errno_, const char *msg, bool warning, void *arg);

typedef struct libcrun_context_s
{
  const char *state_root;
  const char *id;
  const char *bundle;
  const char *console_socket;
  const char *pid_file;
  const char *notify_socket;
  const char *handler;
  int preserve_fds;
  int listen_fds;
  crun_output_handler output_handler;
  void *output_handler_arg;
  int fifo_exec_wait_fd;
  bool systemd_cgroup;
  bool detach;
  bool no_subreaper;
  bool no_new_keyring;
  bool force_no_cgroup;
  bool no_pivot;
  char **argv;
  int argc;
  void *handler_manager; /* struct custom_handler_manager_s *; NULL = no custom handlers */
} libcrun_context_t;

typedef struct libcrun_container_s libcrun_container_t; /* opaque to us */

struct libcrun_container_exec_options_s
{
  size_t struct_size;
  void *process; /* runtime_spec_schema_config_schema_process *; we pass a file path instead */
  const char *path;
  const char *cgroup;
};

libcrun_container_t *libcrun_container_load_from_file (const char *path, libcrun_error_t *err);
void libcrun_container_free (libcrun_container_t *);
int libcrun_container_create (libcrun_context_t *context, libcrun_container_t *container, unsigned int options,
                              libcrun_error_t *err);
int libcrun_container_start (libcrun_context_t *context, const char *id, libcrun_error_t *err);
int libcrun_container_delete (libcrun_context_t *context, void *def, const char *id, bool force,
                              libcrun_error_t *err);
int libcrun_container_kill (libcrun_context_t *context, const char *id, const char *signal, libcrun_error_t *err);
int libcrun_container_killall (libcrun_context_t *context, const char *id, const char *signal,
                               libcrun_error_t *err);
int libcrun_container_pause (libcrun_context_t *context, const char *id, libcrun_error_t *err);
int libcrun_container_unpause (libcrun_context_t *context, const char *id, libcrun_error_t *err);
int libcrun_container_exec_with_options (libcrun_context_t *context, const char *id,
                                         struct libcrun_container_exec_options_s *opts, libcrun_error_t *err);
int libcrun_container_update (libcrun_context_t *context, const char *id, const char *content, size_t len,
                              libcrun_error_t *err);
int libcrun_init_logging (crun_output_handler *output_handler, void **output_handler_arg, const char *id,
                          const char *log, libcrun_error_t *err);

#endif
