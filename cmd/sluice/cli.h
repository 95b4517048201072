/*
 * cli.h - the seam between the offline commands of `sluice` (main.c: check-task, explain) and
 * its client commands (client.c: source, task, cluster over REST).
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

/* Run a client subcommand; argv[0] is the subcommand ("source", "task", "cluster").
 * Returns the process exit code. */
int sl_cli_client_main(int argc, char **argv);

struct sl_task_plan;
struct sl_registry;
/* Compile a task file offline as check-task does (sources and plugin_dir may be NULL), printing
 * its diagnostics. Returns the exit code (0 = *plan compiled); caller frees *plan with
 * sl_task_plan_free, then *reg with sl_registry_free. Defined in main.c. */
int sl__cli_compile(const char *file, const char *sources, const char *plugin_dir,
                    struct sl_task_plan **plan, struct sl_registry **reg);

/* `sluice check-task --precheck` (precheck.c): the shard-merge prechecks of a compiled plan on
 * its sources and target, printed as check-task prints problems. Returns the exit code (0: no
 * error; 1: a precheck failed or a server could not be read). */
int sl_cli_precheck(const struct sl_task_plan *plan);

/* `sluice verify` (verify.c); argv[0] is "verify". Returns the process exit code. */
int sl_cli_verify(int argc, char **argv);

#endif
