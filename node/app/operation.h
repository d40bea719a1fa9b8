/*
 * An operator action on record (ENTRY_OPERATOR, PROTOCOL.md 3.6.2): who (uid and user name),
 * when, what and with which arguments, as the JSON a journal row carries. The running node
 * records what it is asked through its control socket; a command that acts on a stopped
 * node's books (`key replace`, `peer add --replace`) records its own.
 */
#ifndef CORRIDOR_OPERATION_H
#define CORRIDOR_OPERATION_H

#include <stdint.h>

#include <jansson.h>

#include "ledger.h"

/* The wall clock in milliseconds since the Unix epoch. */
int64_t operation_wall_ms(void);

/* Inside a transaction: appends the row for `action` by `uid` (its user name looked up here),
 * concerning channel `peer` ("" for none), with `args` (stolen, also on failure). */
ledger_err_t operation_record(ledger_t *ledger, long long uid, const char *action, const char *peer,
                              json_t *args) __attribute__((warn_unused_result));

#endif
