/*
 * The node's screening of incoming payments (PROTOCOL.md 3.8.2), between the engine and the
 * screen layer: the list refuses a listed party in the arrival transaction; a configured
 * program makes the payment held, and runs outside the loop turn once the transaction that
 * held it committed. Its verdict is a local event kept here until the next transaction
 * applies it, only if the payment still waits for the program. Payments held waiting for the
 * program when the node stopped are screened again at start.
 */
#ifndef CORRIDOR_SCREENING_H
#define CORRIDOR_SCREENING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "config.h"
#include "engine.h"
#include "ledger.h"
#include "screen_run.h"

typedef struct screening screening_t;

/* Loads the list and prepares the program of `config` (none: every payment passes). -1 with
 * one line in err when the list cannot be read (the node does not start on it). */
int screening_open(const config_t *config, screening_t **out, char *err, size_t err_size);
void screening_close(screening_t **self_p);

/* engine_ctx_t.screen and on_held (arg: the screening_t). */
channel_screen_t screening_check(void *arg, const settlement_t *s);
void screening_on_held(void *arg, const char *peer, const char *uetr);

/* After the turn's transaction: starts the program for the payments it held (if it committed;
 * else they are forgotten: nothing was held). */
void screening_after_commit(screening_t *sc, bool committed, ledger_t *ledger, int64_t now_ms);

/* At start: the program again for every payment held waiting for it. */
void screening_resume(screening_t *sc, ledger_t *ledger, int64_t now_ms);

/* The programs' descriptors to poll (at most max), and when one times out next. */
size_t screening_poll_items(const screening_t *sc, zmq_pollitem_t *items, size_t max);
int64_t screening_next_deadline(const screening_t *sc);

/* Takes the verdicts of programs that finished, without blocking. */
void screening_collect(screening_t *sc, int64_t now_ms);

/* Whether verdicts wait for a transaction. */
bool screening_has_verdicts(const screening_t *sc);

/* Inside the transaction: applies the verdicts taken (accept releases, reject declines, hold
 * or a failure leaves the payment for a person); a payment decided meanwhile is left alone. */
ledger_err_t screening_apply(screening_t *sc, engine_t *engine, const config_t *config,
                             ledger_t *ledger) __attribute__((warn_unused_result));

/* The poll descriptors the programs can need at most. */
#define SCREENING_POLL_MAX (3 * SCREEN_RUNNING_MAX)

#endif
