/*
 * The responder's side of reconciliation, per peer: which of a peer's StatementRequests are
 * answered, when, and at what cost. A peer holding valid keys may ask as often and as
 * expensively as it likes; what it can make us do stays bounded:
 *   - requests:  RESPONDER_REQUESTS_PER_S a second after a burst of RESPONDER_REQUESTS_BURST;
 *                one over the rate waits for the next allowance (the newest only: an honest
 *                reconcile asks one at a time and is only slowed);
 *   - work:      entries read, RESPONDER_WORK_PER_S units of RESPONDER_WORK_UNIT a second; an
 *                answer that read more than the burst puts the peer in debt, and its next
 *                request waits until the debt is paid;
 *   - repeats:   a request sent again (same id) gets the answer already made, not new work.
 * A request that only reads is answered from a read snapshot outside the write transaction
 * (the daemon passes a read-only ledger in the context); one carrying a repair or a checkpoint
 * inside it. Pure bookkeeping: the caller passes the time.
 */
#ifndef CORRIDOR_RESPONDER_H
#define CORRIDOR_RESPONDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corridor.pb-c.h"
#include "recon.h"

typedef struct responder responder_t;

responder_t *responder_new(size_t peers);
void responder_free(responder_t **self_p);

/* Whether a request from `peer` may be answered at now_ms (its allowance is taken). */
bool responder_admit(responder_t *r, size_t peer, int64_t now_ms);

/* Keeps a request that may not be answered yet, taking it over; it supersedes any kept. */
void responder_defer(responder_t *r, size_t peer, Corridor__StatementRequest *req);

/* The kept request of `peer` if its allowance came back (taken; the caller frees it with
 * corridor__statement_request__free_unpacked), else NULL. */
Corridor__StatementRequest *responder_release(responder_t *r, size_t peer, int64_t now_ms);

/* When the earliest kept request may be released (INT64_MAX: none is kept). */
int64_t responder_next_ms(const responder_t *r);

/* Whether the peer's work allowance lets an admitted request be answered now: the requests of
 * one turn were admitted before any was answered, and one answer may put the peer in debt. */
bool responder_may_work(const responder_t *r, size_t peer, int64_t now_ms);

/* Answers an admitted request (recon_answer on ctx), or repeats the answer to the same request
 * id; charges the work to the peer. *body is malloc'd. */
ledger_err_t responder_answer(responder_t *r, size_t peer, const recon_ctx_t *ctx,
                              const Corridor__StatementRequest *req, int64_t now_ms, uint8_t **body,
                              size_t *len, bool *rebased) __attribute__((warn_unused_result));

/* Forgets the answers kept for repeats: the transaction that made them was rolled back. */
void responder_forget_answers(responder_t *r);

/* Requests of `peer` that had to wait (over its rate, or its work in debt). */
uint64_t responder_refused(const responder_t *r, size_t peer);

#endif
