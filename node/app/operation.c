/*
 * An operator action on record: see operation.h.
 */
#include "operation.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>

int64_t operation_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ledger_err_t operation_record(ledger_t *ledger, long long uid, const char *action, const char *peer,
                              json_t *args)
{
    char name[64] = "";
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r((uid_t)uid, &pw, buf, sizeof buf, &found) == 0 && found != NULL) {
        snprintf(name, sizeof name, "%s", pw.pw_name);
    }
    json_t *record =
        json_pack("{s:I, s:s, s:I, s:s, s:o}", "uid", (json_int_t)uid, "user", name, "at_ms",
                  (json_int_t)operation_wall_ms(), "action", action, "args", args);
    char *text = record != NULL ? json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(record);
    ledger_err_t rc = text != NULL && ledger_in_transaction(ledger)
                          ? ledger_record_operation(ledger, peer, text)
                          : LEDGER_E_STORAGE;
    free(text);
    return rc;
}
