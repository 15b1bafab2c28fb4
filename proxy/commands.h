/*
 * commands: the subcommands of the one `martgate` binary. main.c only
 * dispatches; each subcommand lives in the module that owns its job.
 */
#ifndef MARTGATE_COMMANDS_H
#define MARTGATE_COMMANDS_H

#include "policy/policy.h"

/* Each takes argv with argv[0] = the subcommand name ("serve", "token", ...)
 * and returns the process exit status (0 ok, 1 failure, 2 usage error). */
int cmd_serve_main(int argc, char **argv);   /* proxy/server.c */
int cmd_token_main(int argc, char **argv);   /* proxy/cmd_token.c */
int cmd_policy_main(int argc, char **argv);  /* proxy/cmd_policy.c */
int cmd_policy_diff(int argc, char **argv);  /* proxy/cmd_policy_diff.c */
int cmd_policy_matrix(int argc, char **argv); /* proxy/cmd_policy_matrix.c */
/* Loads a policy for a policy subcommand: errors (and then warnings) to
 * stderr with file:line. 0 or -1. (proxy/cmd_policy.c) */
int cmd_policy_load(const char *path, policy_t **p);
int cmd_audit_main(int argc, char **argv);   /* proxy/cmd_audit.c */

#endif
