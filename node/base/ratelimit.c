/* The GCRA rate limit; see ratelimit.h. */
#include "ratelimit.h"

#include <assert.h>
#include <stddef.h>

void ratelimit_init(ratelimit_t *r, uint32_t per_second, uint32_t burst)
{
    assert(r != NULL && per_second >= 1 && per_second <= 1000 && burst >= 1);
    r->interval_ms = 1000 / (int64_t)per_second;
    r->tolerance_ms = ((int64_t)burst - 1) * r->interval_ms;
    r->due_ms = INT64_MIN;
    r->refused = 0;
}

bool ratelimit_take(ratelimit_t *r, int64_t now_ms)
{
    int64_t due = r->due_ms > now_ms ? r->due_ms : now_ms;
    if (due - now_ms > r->tolerance_ms) {
        r->refused++;
        return false;
    }
    r->due_ms = due + r->interval_ms;
    return true;
}

void ratelimit_charge(ratelimit_t *r, int64_t now_ms, uint64_t cost)
{
    int64_t due = r->due_ms > now_ms ? r->due_ms : now_ms;
    uint64_t most = (uint64_t)(INT64_MAX - due) / (uint64_t)r->interval_ms;
    r->due_ms = due + (int64_t)(cost < most ? cost : most) * r->interval_ms;
}

int64_t ratelimit_next_ms(const ratelimit_t *r)
{
    return r->due_ms == INT64_MIN ? INT64_MIN : r->due_ms - r->tolerance_ms;
}

void costlimit_init(costlimit_t *c, uint64_t unit, uint32_t units_per_s, uint32_t burst)
{
    assert(c != NULL && unit >= 1);
    ratelimit_init(&c->units, units_per_s, burst);
    c->unit = unit;
    c->carry = 0;
}

void costlimit_charge(costlimit_t *c, int64_t now_ms, uint64_t cost)
{
    uint64_t total = c->carry + cost < c->carry ? UINT64_MAX : c->carry + cost;
    ratelimit_charge(&c->units, now_ms, total / c->unit);
    c->carry = total % c->unit;
}

int64_t costlimit_next_ms(const costlimit_t *c)
{
    return ratelimit_next_ms(&c->units);
}
