/*
 * What the commands print: the human text and the JSON documents of `ledger`, `operations`,
 * `audit`, `status` and `reconcile`. JSON field names are part of the README's contract.
 */
#ifndef CORRIDOR_RENDER_H
#define CORRIDOR_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "audit.h"
#include "config.h"
#include "identity.h"
#include "ledger.h"

/* The books: positions, counts and (JSON) every settlement, streamed. */
int render_ledger_json(ledger_t *ledger, const config_t *config);
int render_ledger_text(ledger_t *ledger, const config_t *config);

/* Operator actions as the journal records them; with list != NULL collected for JSON. */
typedef struct {
    json_t *list; /* --json: the records, else NULL (printed as they come) */
    size_t count;
} operations_out_t;
void render_operation(const ledger_operation_t *op, void *arg);

/* An audit's findings; the exit code says clean (0) or not (1). On stderr: which keys came
 * from the audited home itself, and whose own signatures went unchecked. */
int render_audit(const audit_report_t *r, size_t homes, bool json);
/* The audit's JSON document (as `audit --json` prints it); NULL when out of memory. */
json_t *render_audit_json(const audit_report_t *r);

/* The key history of a home's ledger (read-only) as `card --history` prints it: our keys per
 * channel and each peer's, with the ranges of sequence numbers they sign; our current key
 * (`self`) alone when the ledger records none of ours. The exit code. */
int render_key_history(ledger_t *ledger, const char *node, const identity_t *self, bool json);

/* A running node's status reply, as text. */
void render_status_text(json_t *reply);

/* A reconciliation report, as text. */
void render_reconcile_text(json_t *report);

#endif
