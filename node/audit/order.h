/*
 * The order of each settlement's journal rows (PROTOCOL.md 3.6.2): every row is checked on its
 * own by its evidence, but a row is only right after the rows its settlement had before it. An
 * insider holding no key can copy evidence that verifies (a booking's own reply is a signed
 * ACSC) into a row that should never follow: a second `released`, a `returned` of a payment
 * never settled. This replays each settlement's states in journal order.
 */
#ifndef CORRIDOR_AUDIT_ORDER_H
#define CORRIDOR_AUDIT_ORDER_H

#include <stdbool.h>
#include <stdint.h>

#include "ledger.h"

typedef struct row_order row_order_t;

row_order_t *row_order_new(void);
void row_order_destroy(row_order_t **self_p);

/* Takes the next row of settlement `settlement_id` (> 0), of `kind`, for a settlement going
 * `original`, a return record (PROTOCOL.md 3.9) when `is_return`, a leg of an FX trade (3.10)
 * when `is_fx_leg`: NULL when it may follow that settlement's earlier rows, else what is wrong
 * (a static string). A return's rows follow a payment's state machine (pending then posted or
 * voided; booked; refused), but it is never held, released, declined, held at the peer, asked
 * back or returned (kind 6). A leg's follow a payment's, with `original` the way its FxProposal
 * went (the proposer's rows are those of a payer, the acceptor's those of a payee), but it is
 * never asked back or returned. A set-off leg (3.12.6) when `is_setoff_leg`: its rows are
 * setoff_pending then at most one of setoff_posted and setoff_voided, and rows of those kinds
 * belong to set-off legs only. Out of memory: "out of memory". */
const char *row_order_take(row_order_t *o, int64_t settlement_id, entry_kind_t kind,
                           direction_t original, bool is_return, bool is_fx_leg,
                           bool is_setoff_leg);

#endif
