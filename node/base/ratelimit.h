/*
 * A rate limit per peer (GCRA, the leaky bucket as a single timestamp): at most `per_second`
 * events a second on average, `burst` at once. Pure: the caller passes the time, so the
 * deterministic simulator and the tests drive it.
 */
#ifndef CORRIDOR_RATELIMIT_H
#define CORRIDOR_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t due_ms;       /* when the bucket is empty again (the theoretical arrival time) */
    int64_t interval_ms;  /* 1000 / per_second */
    int64_t tolerance_ms; /* (burst - 1) intervals */
    uint64_t refused;     /* events refused so far */
} ratelimit_t;

/* per_second 1..1000, burst >= 1. */
void ratelimit_init(ratelimit_t *r, uint32_t per_second, uint32_t burst);

/* Whether one more event may happen at now_ms (it is counted); else refused is counted. */
bool ratelimit_take(ratelimit_t *r, int64_t now_ms);

/* Counts `cost` events at now_ms whatever the allowance: for work measured after it was done
 * (an answer that read more than the burst). The next event waits until the debt is paid. */
void ratelimit_charge(ratelimit_t *r, int64_t now_ms, uint64_t cost);

/* When the next event will be allowed (now or earlier: it is allowed already). */
int64_t ratelimit_next_ms(const ratelimit_t *r);

/* A budget of something measured after the fact (bytes stored, entries read): GCRA over units
 * of `unit`, with what is left of a unit carried to the next charge. */
typedef struct {
    ratelimit_t units;
    uint64_t unit;
    uint64_t carry; /* charged but less than a unit */
} costlimit_t;

/* units_per_s and burst as for ratelimit_init; unit >= 1. */
void costlimit_init(costlimit_t *c, uint64_t unit, uint32_t units_per_s, uint32_t burst);

/* Counts `cost` (in the unit's measure) at now_ms. */
void costlimit_charge(costlimit_t *c, int64_t now_ms, uint64_t cost);

/* When the budget allows the next piece of work (now or earlier: allowed already). */
int64_t costlimit_next_ms(const costlimit_t *c);

#endif
