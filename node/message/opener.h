/* Opening a turn's inbound frames on every core.
 *
 * Checking an Ed25519 signature (about 60 us here) is the largest cost of receiving a message,
 * and a node receives thousands per loop turn under load. Opening an envelope needs nothing
 * but the frame, this node's identity and its peers' keys, all read-only while the loop
 * waits, so the frames of one turn are opened in parallel by the loop thread and a few
 * workers; the loop then hands the results to the channels in arrival order, exactly as if it
 * had opened them itself. Small batches are opened on the loop thread alone (waking a worker
 * costs more than it saves). */
#ifndef CORRIDOR_OPENER_H
#define CORRIDOR_OPENER_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

/* One inbound frame and, after opener_run, what opening it gave. */
typedef struct {
    size_t peer_index;   /* the connection it came on (its ZAP identity) */
    const uint8_t *data; /* the frame (the caller's) */
    size_t len;
    env_err_t rc;           /* envelope_open's answer */
    envelope_message_t msg; /* on ENV_OK the message (the caller takes or clears it) */
} opener_frame_t;

typedef struct opener opener_t;

/* Starts `workers` threads (0: open on the calling thread only). NULL when out of memory. */
opener_t *opener_new(size_t workers);
void opener_free(opener_t **self_p);

/* The worker count that suits this machine: one less than its online cores, at most 7. */
size_t opener_default_workers(void);

/* Opens frames[0..count) with envelope_open against `self` and `peers`, which must not change
 * until it returns. Fills each frame's rc and msg. */
void opener_run(opener_t *o, opener_frame_t *frames, size_t count, const identity_t *self,
                const envelope_peer_t *peers, size_t peers_count);

#endif
