/*
 * cli.h - the seam between the offline commands of `sluice` (main.c: check-task, explain) and
 * its client commands (client.c: source, task, cluster over REST).
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

/* Run a client subcommand; argv[0] is the subcommand ("source", "task", "cluster").
 * Returns the process exit code. */
int sl_cli_client_main(int argc, char **argv);

#endif
