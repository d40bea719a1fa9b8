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

int64_t ratelimit_next_ms(const ratelimit_t *r)
{
    return r->due_ms == INT64_MIN ? INT64_MIN : r->due_ms - r->tolerance_ms;
}
