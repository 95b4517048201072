/*
 * tverify.h - verification of a task while it runs (sluice extension beside DM's validator): the
 * task's tables under its routing compared by plugins/common/verify.c on scheduler threads, with
 * the task's "verify" options, and its state, progress, per-table results and differing rows
 * kept for GET /api/v1/tasks/{name}/verify. The API starts, reads and frees a run; the run never
 * calls the API.
 *
 * Thread-safety: every function is thread-safe except sl_tverify_free, which the owner calls
 * once, when no other call on the run can happen.
 */
#ifndef SLUICE_RUNTIME_TVERIFY_H
#define SLUICE_RUNTIME_TVERIFY_H

#include <jansson.h>

#include "worker.h"

typedef struct sl_tverify sl_tverify;

/* Defaults of the task's "verify" object (the compiler checks its ranges). Before each re-check
 * of a differing chunk the run waits until the task has applied the source's position of that
 * moment (its checkpoint GTID); when that cannot be known (task not syncing, MySQL GTIDs, a
 * timeout) it waits retry_delay_ms, then twice that, and so on: 1+2+4+8 s by default. */
#define SL_TVERIFY_THREADS      1
#define SL_TVERIFY_CHUNK_ROWS   1000
#define SL_TVERIFY_RETRIES      4
#define SL_TVERIFY_RETRY_MS     1000
#define SL_TVERIFY_MAX_ROWS     1000
/* At most this long for the task to apply a source position before a re-check. */
#define SL_TVERIFY_APPLY_WAIT_S 30
/* A differing chunk holds at most chunk_rows x this many rows per side (see verify.h row_cap). */
#define SL_TVERIFY_ROW_CAP_MULT 16

/*
 * Start verifying the tables of plan (which need not outlive the run: what it needs is copied)
 * on a thread of w's scheduler. subs (may be NULL) are the task's subtasks in plan order, whose
 * replication the run waits on before re-checks; they must outlive the run. The repair SQL is written to dir/<task>.sql (dir is created);
 * nothing is ever applied. Returns 0 and *out (free with sl_tverify_free), SL_ENOTSUP for a plan
 * with no phases (a stored task that no longer compiles), SL_ELIMIT when the scheduler has no
 * thread left, SL_EIO, SL_ENOMEM; err says why.
 */
int  sl_tverify_start(sl_worker *w, const sl_task_plan *plan, sl_subtask *const *subs,
                      const char *dir, sl_tverify **out, sl_error *err);
/* 1 while the run has not ended. */
int  sl_tverify_running(sl_tverify *v);
/* {"task", "state": "running"|"finished"|"failed"|"stopped", "started_at", "finished_at",
 *  "error_msg", "progress": {"tables", "tables_done", "rows", "chunks", "chunks_differing"},
 *  "result": {"missing", "extra", "different", "excluded", "equal"}, "tables": [{"target",
 *  "sources", "state", "excluded_reason", "rows", "chunks", ...}], "rows": [{"table", "kind",
 *  "key", "columns"}], "rows_listed_max", "rows_truncated", "repair_sql"}. Caller decrefs. */
json_t *sl_tverify_status(sl_tverify *v);
/* Stop the run at its next chunk, wait for its threads, free it. NULL is fine. */
void sl_tverify_free(sl_tverify *v);

/* Whether the applied MariaDB GTID list done ("0-1-7,1-2-9") holds position pos: 1 yes, 0 not
 * yet, -1 when either is not a domain-server-seq list (internal; exposed for its unit test). */
int  sl__tverify_gtid_covers(const char *done, const char *pos);

#endif
