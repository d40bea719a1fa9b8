/*
 * The offline audit of one or more homes: `corridor audit`.
 *
 * Works read-only on a home's files, with or without the node running, so it can run on a
 * copy of a home elsewhere. For each home it checks:
 *   I1  debits equal credits per currency (over the cached account balances);
 *   I3  each UETR is created once per channel side;
 *   I4  every entry carries signed evidence that verifies with its author's public key alone
 *       (the peer's from the auditor's cards, else the config; this node's own from its key
 *       file), signed for the right recipient, and says what the entry says (UETR, amount,
 *       currency, status);
 *   I5  the journal's hash chain: contiguous rows, each hash over the row and its predecessor;
 *   caches: account balances and settlement statuses recomputed from the journal;
 *   returns (schema 9, PROTOCOL.md 3.9): each return not refused gives back part of a payment
 *       settled the other way in its currency, naming the body of that payment's Settlement,
 *       and a payment's returns settled or pending stay within its amount (kind "returns").
 *   FX trades (schema 10, PROTOCOL.md 3.10): each leg opened by the proposer's FxProposal naming
 *       it, answered by StatusReports naming the trade; every trade holds both legs or neither,
 *       on one FxProposal, with one status, opposite money and two currencies (kind "fx").
 *   cycles (schema 11, PROTOCOL.md 3.11): each `cycle` row holds a statement of this channel
 *       with both signatures verifying and equal to its closed cycle's; each closed cycle has
 *       that row and states the figures its entries give (recomputed from decided_seq and the
 *       cuts); net settlement rows verify and match their record; a settled net settlement has
 *       its `net_settled` row and pays a closed cycle's net; a disputed cycle, or a closing one
 *       that is not the latest, is reported (kind "cycle").
 * and between every pair of homes given, I2: A.net(B, c) == -B.net(A, c) when neither side
 * has a settlement of that channel pending.
 */
#ifndef CORRIDOR_AUDIT_H
#define CORRIDOR_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corridor/limits.h"
#include "identity.h"

#define AUDIT_KIND_LEN_MAX   23
#define AUDIT_HOMES_NOTED    8 /* homes listed whose own signatures went unchecked */
#define AUDIT_DETAIL_LEN_MAX 255

typedef struct {
    char home[CORRIDOR_PATH_LEN_MAX];  /* the home the violation was found in */
    char kind[AUDIT_KIND_LEN_MAX + 1]; /* balance, duplicate, evidence, chain, cache, mirror... */
    char detail[AUDIT_DETAIL_LEN_MAX + 1]; /* what and which entry, in words */
} audit_violation_t;

/* A key trusted for a peer of an audited home, and what it signed there. */
typedef struct {
    char home[CORRIDOR_PATH_LEN_MAX];
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char key_id[2 * IDENTITY_KEY_ID_BYTES + 1]; /* hex */
    bool from_card;                             /* from a card the auditor gave, else the home */
    uint64_t rows;                              /* evidence rows it verified */
    uint64_t first_seq, last_seq;               /* the peer's sequence numbers among them */
} audit_key_t;

typedef struct {
    uint64_t entries_checked;      /* journal rows checked over all homes */
    size_t violations_count;       /* violations found */
    size_t violations_capacity;    /* allocated */
    audit_violation_t *violations; /* the first AUDIT_VIOLATIONS_MAX, then counted only */
    size_t violations_dropped;     /* found beyond the stored maximum */
    audit_key_t *keys;             /* per home, the keys trusted for each peer */
    size_t keys_count;
    /* homes whose own signatures went unchecked: no card of the node, no readable key file */
    char own_unchecked[AUDIT_HOMES_NOTED][CORRIDOR_PATH_LEN_MAX];
    size_t own_unchecked_count;
} audit_report_t;

#define AUDIT_VIOLATIONS_MAX 10000

void audit_report_init(audit_report_t *r);
void audit_report_free(audit_report_t *r);

/* Audits the homes given; fills the report. Peers' keys come from `cards` (the auditor's,
 * any number per peer: a key history) and, for a peer with none, from the audited home's own
 * config (see trust.h); a config key that none of a peer's cards holds is a violation of kind
 * "key". A card of an audited node itself gives its own key (else its key file). Returns 0 when the
 * audit could run (clean or not), -1 when a home could not be read at all (then a violation of kind
 * "unreadable" says why). */
int audit_homes(const char *const *homes, size_t homes_count, const peer_card_t *cards,
                size_t cards_count, audit_report_t *report);

#endif
