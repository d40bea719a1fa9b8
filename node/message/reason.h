/*
 * The reasons Corridor gives when it refuses a payment: one enum, mapped to its ISO 20022
 * external status reason code (ExternalStatusReason1Code) and a text in one table. A code
 * received from a peer stays text (well-formed: reason_code_check), since the external code
 * lists change; only what we emit comes from here.
 */
#ifndef CORRIDOR_REASON_H
#define CORRIDOR_REASON_H

typedef enum {
    REASON_NONE = 0,    /* not refused */
    REASON_FORMAT,      /* FF01: a field is malformed (UETR, text, date, node code) */
    REASON_ZERO_AMOUNT, /* AM01: the amount is zero */
    REASON_OVER_CAP,    /* AM02: over the net debit cap (or more than our books can hold) */
    REASON_CURRENCY,    /* AM03: a currency this node does not deal in */
    REASON_AMOUNT,      /* AM12: the amount is negative or too large */
    REASON_DUPLICATE,   /* DUPL: the UETR was used before with other content */
    REASON_EXPIRED,     /* AB05: its expiry passed before the payee decided (3.8.1) */
    REASON_REGULATORY,  /* RR04: a party is on the screening list, or a person refused it */
    REASON_NO_ORIGINAL, /* NOOR: a return names no settled payment of ours to the returner (3.9) */
    REASON_RETURN_EXCEEDS, /* AM09: a return would take its payment's returns past its amount */
    REASON_FX_BAND,        /* AG01 (no agreement): an FX trade's rate outside our band (3.10) */
} reason_t;

/* The ISO code ("AM02"), or NULL for REASON_NONE. */
const char *reason_code(reason_t r);

/* What the code means, in words for a person. */
const char *reason_text(reason_t r);

#endif
