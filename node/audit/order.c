/* Replays each settlement's row kinds in journal order; see order.h. */
#include "order.h"

#include <assert.h>
#include <stdlib.h>

/* Where a settlement stands after its rows so far. */
typedef enum {
    ORDER_NONE = 0, /* no row yet: an opening must come */
    ORDER_PENDING,  /* ours, not answered */
    ORDER_POSTED,   /* ours, settled */
    ORDER_VOIDED,   /* ours, rejected */
    ORDER_BOOKED,   /* the peer's, settled (booked, or released after a hold) */
    ORDER_REFUSED,  /* the peer's, rejected (refused, or declined after a hold) */
    ORDER_HELD,     /* the peer's, held */
    ORDER_RETURNED, /* settled, then returned */
} order_state_t;

#define ORDER_IDS_MAX (INT64_C(1) << 32) /* settlement ids past this are not followed */

struct row_order {
    uint8_t *state; /* order_state_t by settlement id */
    size_t room;
};

row_order_t *row_order_new(void)
{
    return calloc(1, sizeof(row_order_t));
}

void row_order_destroy(row_order_t **self_p)
{
    row_order_t *o = *self_p;
    if (o != NULL) {
        free(o->state);
        free(o);
    }
    *self_p = NULL;
}

/* The state after `kind` from `at`, or ORDER_NONE when `kind` may not follow it. Rows that
 * record without moving (an import's proof, a PDNG noted, a cancellation asked or refused)
 * keep the state. */
static order_state_t next_state(order_state_t at, entry_kind_t kind, direction_t original)
{
    bool out = original == DIRECTION_OUT;
    bool opening = kind == ENTRY_OUT_PENDING || kind == ENTRY_IN_BOOKED ||
                   kind == ENTRY_IN_REFUSED || kind == ENTRY_HELD || kind == ENTRY_SETOFF_PENDING;
    if (opening && at != ORDER_NONE) {
        return at; /* a second opening: the audit's duplicate check reports it */
    }
    switch (kind) {
    case ENTRY_OUT_PENDING:
        return at == ORDER_NONE && out ? ORDER_PENDING : ORDER_NONE;
    case ENTRY_IN_BOOKED:
        return at == ORDER_NONE && !out ? ORDER_BOOKED : ORDER_NONE;
    case ENTRY_IN_REFUSED:
        return at == ORDER_NONE && !out ? ORDER_REFUSED : ORDER_NONE;
    case ENTRY_HELD:
        return at == ORDER_NONE && !out ? ORDER_HELD : ORDER_NONE;
    case ENTRY_OUT_POSTED:
        return at == ORDER_PENDING ? ORDER_POSTED : ORDER_NONE;
    case ENTRY_OUT_VOIDED:
        return at == ORDER_PENDING ? ORDER_VOIDED : ORDER_NONE;
    case ENTRY_RELEASED:
        return at == ORDER_HELD ? ORDER_BOOKED : ORDER_NONE;
    case ENTRY_DECLINED:
        return at == ORDER_HELD ? ORDER_REFUSED : ORDER_NONE;
    case ENTRY_RETURNED:
        return at == ORDER_POSTED || at == ORDER_BOOKED ? ORDER_RETURNED : ORDER_NONE;
    case ENTRY_IMPORTED: /* after the rows it proves */
        return at == ORDER_POSTED || at == ORDER_VOIDED || at == ORDER_BOOKED || at == ORDER_REFUSED
                   ? at
                   : ORDER_NONE;
    case ENTRY_HELD_AT_PEER:
    case ENTRY_CANCEL_REQUESTED:
        return at == ORDER_PENDING ? at : ORDER_NONE;
    case ENTRY_CANCEL_REFUSED: /* at the payer once answered, at the payee once decided */
        return at != ORDER_NONE && at != ORDER_HELD ? at : ORDER_NONE;
    case ENTRY_SETOFF_PENDING: /* a set-off leg (3.12.6): opened, then decided once */
        return at == ORDER_NONE ? (out ? ORDER_PENDING : ORDER_HELD) : ORDER_NONE;
    case ENTRY_SETOFF_POSTED:
        return at == ORDER_PENDING ? ORDER_POSTED : at == ORDER_HELD ? ORDER_BOOKED : ORDER_NONE;
    case ENTRY_SETOFF_VOIDED:
        return at == ORDER_PENDING ? ORDER_VOIDED : at == ORDER_HELD ? ORDER_REFUSED : ORDER_NONE;
    case ENTRY_REBASED:
    case ENTRY_OPERATOR:
    case ENTRY_CHECKPOINT:
    case ENTRY_CYCLE: /* rows of no settlement (3.11.4) */
    case ENTRY_NET_CLAIMED:
    case ENTRY_NET_SETTLED:
    case ENTRY_NET_REFUSED:
        break;
    }
    return ORDER_NONE;
}

/* Whether a row of `kind` may belong to a return record at all (3.9): the kinds of a payment
 * that is sent, booked or refused, and an import's proof. */
static bool return_kind(entry_kind_t kind)
{
    switch (kind) {
    case ENTRY_OUT_PENDING:
    case ENTRY_OUT_POSTED:
    case ENTRY_OUT_VOIDED:
    case ENTRY_IN_BOOKED:
    case ENTRY_IN_REFUSED:
    case ENTRY_IMPORTED:
        return true;
    default:
        return false;
    }
}

/* Whether a row of `kind` may belong to a leg of an FX trade (3.10): the kinds of a payment
 * sent, booked, refused or held and decided, answered PDNG, or imported. A trade is answered
 * as one, so neither leg is asked back alone nor returned. */
static bool fx_leg_kind(entry_kind_t kind)
{
    switch (kind) {
    case ENTRY_RETURNED:
    case ENTRY_CANCEL_REQUESTED:
    case ENTRY_CANCEL_REFUSED:
        return false;
    default:
        return true;
    }
}

/* Whether `kind` is a set-off leg's (3.12.6). */
static bool setoff_kind(entry_kind_t kind)
{
    return kind == ENTRY_SETOFF_PENDING || kind == ENTRY_SETOFF_POSTED ||
           kind == ENTRY_SETOFF_VOIDED;
}

const char *row_order_take(row_order_t *o, int64_t settlement_id, entry_kind_t kind,
                           direction_t original, bool is_return, bool is_fx_leg, bool is_setoff_leg)
{
    assert(o != NULL && settlement_id > 0);
    if (is_setoff_leg && !setoff_kind(kind)) {
        return "a set-off leg has only rows setoff_pending, setoff_posted and setoff_voided";
    }
    if (!is_setoff_leg && setoff_kind(kind)) {
        return "a set-off row of a record that is no set-off leg";
    }
    if (is_return && !return_kind(kind)) {
        return "a return is never held, released, declined, asked back or returned";
    }
    if (is_fx_leg && !fx_leg_kind(kind)) {
        return "a leg of an FX trade is never asked back or returned";
    }
    if (settlement_id >= ORDER_IDS_MAX) {
        return NULL; /* the cache check reports a settlement id out of all reason */
    }
    size_t id = (size_t)settlement_id;
    if (id >= o->room) {
        size_t room = o->room == 0 ? 1024 : o->room;
        while (room <= id) {
            room *= 2;
        }
        uint8_t *grown = realloc(o->state, room);
        if (grown == NULL) {
            return "out of memory";
        }
        for (size_t i = o->room; i < room; i++) {
            grown[i] = ORDER_NONE;
        }
        o->state = grown;
        o->room = room;
    }
    order_state_t next = next_state((order_state_t)o->state[id], kind, original);
    if (next == ORDER_NONE) {
        return o->state[id] == ORDER_NONE ? "its first row is not one that opens a settlement"
                                          : "this kind of row cannot follow the rows before it";
    }
    o->state[id] = (uint8_t)next;
    return NULL;
}
