/* The one table of the reasons Corridor emits. */
#include "reason.h"

#include <assert.h>
#include <stddef.h>

static const struct {
    const char *code;
    const char *text;
} reasons[] = {
    [REASON_NONE] = {NULL, "not refused"},
    [REASON_FORMAT] = {"FF01", "invalid format"},
    [REASON_ZERO_AMOUNT] = {"AM01", "zero amount"},
    [REASON_OVER_CAP] = {"AM02", "over the net debit cap"},
    [REASON_CURRENCY] = {"AM03", "currency not accepted"},
    [REASON_AMOUNT] = {"AM12", "invalid amount"},
    [REASON_DUPLICATE] = {"DUPL", "duplicate UETR with other content"},
    [REASON_EXPIRED] = {"AB05", "expired before the payee decided"},
    [REASON_REGULATORY] = {"RR04", "regulatory reason"},
    [REASON_NO_ORIGINAL] = {"NOOR", "no such settled payment to return"},
    [REASON_RETURN_EXCEEDS] = {"AM09", "returns would exceed the payment"},
    [REASON_FX_BAND] = {"AG01", "the trade's rate is outside the band agreed with the peer"},
};

const char *reason_code(reason_t r)
{
    assert((size_t)r < sizeof reasons / sizeof reasons[0]);
    return reasons[r].code;
}

const char *reason_text(reason_t r)
{
    assert((size_t)r < sizeof reasons / sizeof reasons[0]);
    return reasons[r].text;
}
