/*
 * Test-only fault injection on outgoing messages (README, "CORRIDOR_FAULTS").
 *
 * `corridor run` reads CORRIDOR_FAULTS only when it is set: comma-separated key=value pairs
 *   drop=P dup=P reorder=P   probabilities 0..1 per outgoing message
 *   delay_ms=N               each message held back a random 0..N ms
 *   seed=N                   the schedule is a function of the seed (and the traffic)
 *   drop_type=A+B            faults only for these message types (e.g. StatusReport+Ack)
 * An unknown key or a bad value is refused. Faults sit between the channel and the socket,
 * so the node's own logic never knows: a dropped message looks like one lost on the wire.
 */
#ifndef CORRIDOR_FAULTS_H
#define CORRIDOR_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

#define FAULTS_ENV       "CORRIDOR_FAULTS"
#define FAULTS_QUEUE_MAX 100000 /* frames held back (delayed or reordered) at most */

typedef struct faults faults_t;

/* The frame sender faults wrap: 0 sent, -1 not now. */
typedef int (*faults_send_fn)(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire,
                              size_t len);

typedef enum {
    FAULTS_OK = 0,
    FAULTS_E_INVALID, /* not a specification: err says which pair and why */
    FAULTS_E_NOMEM,   /* out of memory */
} faults_err_t;

const char *faults_strerror(faults_err_t err);

/* Parses a specification: FAULTS_OK and *out set (never NULL), or why not with a line in err. */
faults_err_t faults_parse(const char *spec, faults_t **out, char *err, size_t err_size)
    __attribute__((warn_unused_result));
void faults_destroy(faults_t **self_p);

/* One line describing the faults, for the log. */
void faults_describe(const faults_t *f, char *out, size_t out_size);

/* Sends a frame through the faults: it may be dropped, sent twice, held for reordering or
 * delayed. Returns what `send` returned for the frame itself, or 0 when it was dropped or
 * held (to the caller it went out). */
int faults_send(faults_t *f, size_t peer_index, msg_type_t type, const uint8_t *wire, size_t len,
                int64_t now_ms, faults_send_fn send, void *arg);

/* Sends held frames that are due. */
void faults_flush(faults_t *f, int64_t now_ms, faults_send_fn send, void *arg);

/* When the next held frame is due (INT64_MAX if none). */
int64_t faults_next_deadline(const faults_t *f);

typedef struct {
    uint64_t dropped, duplicated, reordered, delayed;
} faults_stats_t;

faults_stats_t faults_stats(const faults_t *f);

#endif
