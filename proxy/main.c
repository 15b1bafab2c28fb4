/*
 * main: the `martgate` binary. Dispatches to subcommands; nothing else.
 */
#include <stdio.h>
#include <string.h>

#include "proxy/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "martgate %s: a governance proxy for PostgreSQL-protocol warehouses\n\n"
            "usage: martgate COMMAND [ARGS]\n\n"
            "  serve --config FILE [--check]   run the proxy (or only validate its config)\n"
            "  token --key FILE --alg ALG --sub USER [...]   mint a JWT for demos and tests\n"
            "  policy check|explain|test ...   validate, explain and test a policy\n"
            "  audit [FILES...] [filters]      review the audit log (--summary, --follow, --json)\n"
            "  audit report --html OUT [...]   the audit summary as an HTML page with charts\n"
            "  help                            this text\n"
            "  --version                       print the version\n\n"
            "Each command takes --help.\n",
            MARTGATE_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("martgate %s\n", MARTGATE_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "serve"))
        return cmd_serve_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "token"))
        return cmd_token_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "policy"))
        return cmd_policy_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "audit"))
        return cmd_audit_main(argc - 1, argv + 1);
    fprintf(stderr, "martgate: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
