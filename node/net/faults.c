/* Test-only fault injection on outgoing messages; see faults.h. */
#include "faults.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC_LEN_MAX    512
#define REORDER_HOLD_MS 50 /* a frame held for reordering goes out after the next, or by then */

/* A frame held back. */
typedef struct {
    int64_t due_ms;
    size_t peer_index;
    msg_type_t type;
    uint8_t *wire;
    size_t len;
    bool reorder; /* released by the next frame to the same peer */
} held_t;

struct faults {
    double drop, dup, reorder; /* probabilities */
    int64_t delay_ms;          /* max added delay */
    uint64_t seed;             /* as given */
    uint64_t rng;              /* xorshift64* state */
    unsigned types;            /* bit per msg_type_t the faults apply to; 0 = all */
    held_t *held;              /* frames held back, unordered */
    size_t held_count, held_capacity;
    faults_stats_t stats;
};

static uint64_t next_random(faults_t *f)
{
    f->rng ^= f->rng >> 12;
    f->rng ^= f->rng << 25;
    f->rng ^= f->rng >> 27;
    return f->rng * UINT64_C(2685821657736338717);
}

/* Uniform in [0, 1). */
static double uniform(faults_t *f)
{
    return (double)(next_random(f) >> 11) / 9007199254740992.0;
}

static int parse_probability(const char *value, double *out)
{
    char *end = NULL;
    errno = 0;
    double p = strtod(value, &end);
    if (errno != 0 || end == value || *end != '\0' || !(p >= 0.0 && p <= 1.0)) {
        return -1;
    }
    *out = p;
    return 0;
}

static int parse_types(char *value, unsigned *types)
{
    *types = 0;
    char *save = NULL;
    for (char *name = strtok_r(value, "+", &save); name != NULL;
         name = strtok_r(NULL, "+", &save)) {
        int found = 0;
        for (int t = MSG_TYPE_MIN; t <= MSG_TYPE_MAX; t++) {
            if (strcmp(name, msg_type_name(t)) == 0) {
                *types |= 1u << t;
                found = 1;
            }
        }
        if (!found) {
            return -1;
        }
    }
    return *types != 0 ? 0 : -1;
}

/* Applies one key=value; returns NULL or what is wrong. */
static const char *apply_pair(faults_t *f, char *key, char *value)
{
    if (strcmp(key, "drop") == 0 || strcmp(key, "dup") == 0 || strcmp(key, "reorder") == 0) {
        double *slot = key[0] == 'd' ? (key[1] == 'r' ? &f->drop : &f->dup) : &f->reorder;
        return parse_probability(value, slot) == 0 ? NULL : "not a probability from 0 to 1";
    }
    char *end = NULL;
    errno = 0;
    if (strcmp(key, "delay_ms") == 0) {
        long long v = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < 0 || v > 600000) {
            return "not a whole number of milliseconds from 0 to 600000";
        }
        f->delay_ms = v;
        return NULL;
    }
    if (strcmp(key, "seed") == 0) {
        unsigned long long v = strtoull(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || value[0] == '-') {
            return "not a non-negative whole number";
        }
        f->seed = v;
        return NULL;
    }
    if (strcmp(key, "drop_type") == 0) {
        return parse_types(value, &f->types) == 0
                   ? NULL
                   : "not +-separated message types (Settlement, StatusReport, Return, "
                     "StatementRequest, Statement, Ack, Hello)";
    }
    return "unknown key (drop, dup, reorder, delay_ms, seed, drop_type)";
}

const char *faults_strerror(faults_err_t err)
{
    switch (err) {
    case FAULTS_OK:
        return "ok";
    case FAULTS_E_INVALID:
        return "not a fault specification";
    case FAULTS_E_NOMEM:
        return "out of memory";
    }
    return "unknown error";
}

faults_err_t faults_parse(const char *spec, faults_t **out, char *err, size_t err_size)
{
    assert(spec != NULL && out != NULL);
    *out = NULL;
    char buf[SPEC_LEN_MAX + 1];
    if (strlen(spec) > SPEC_LEN_MAX) {
        snprintf(err, err_size, "%s is longer than %d characters", FAULTS_ENV, SPEC_LEN_MAX);
        return FAULTS_E_INVALID;
    }
    strcpy(buf, spec);
    faults_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        snprintf(err, err_size, "out of memory");
        return FAULTS_E_NOMEM;
    }
    char *save = NULL;
    for (char *pair = strtok_r(buf, ",", &save); pair != NULL; pair = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(pair, '=');
        const char *problem = "expected key=value";
        if (eq != NULL) {
            *eq = '\0';
            problem = apply_pair(f, pair, eq + 1);
        }
        if (problem != NULL) {
            snprintf(err, err_size, "%s: '%s': %s", FAULTS_ENV, pair, problem);
            free(f);
            return FAULTS_E_INVALID;
        }
    }
    f->rng = f->seed * UINT64_C(0x9E3779B97F4A7C15) + 1; /* never zero */
    *out = f;
    return FAULTS_OK;
}

void faults_destroy(faults_t **self_p)
{
    assert(self_p != NULL);
    faults_t *f = *self_p;
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->held_count; i++) {
        free(f->held[i].wire);
    }
    free(f->held);
    free(f);
    *self_p = NULL;
}

void faults_describe(const faults_t *f, char *out, size_t out_size)
{
    snprintf(out, out_size,
             "FAULT INJECTION ON: drop=%.3f dup=%.3f reorder=%.3f delay_ms=%lld seed=%llu%s",
             f->drop, f->dup, f->reorder, (long long)f->delay_ms, (unsigned long long)f->seed,
             f->types != 0 ? " (some message types only)" : "");
}

faults_stats_t faults_stats(const faults_t *f)
{
    return f->stats;
}

/* Holds a copy of a frame; false when the queue is full (the caller sends it now). */
static bool hold(faults_t *f, size_t peer_index, msg_type_t type, const uint8_t *wire, size_t len,
                 int64_t due_ms, bool reorder)
{
    if (f->held_count >= FAULTS_QUEUE_MAX) {
        return false;
    }
    if (f->held_count == f->held_capacity) {
        size_t cap = f->held_capacity ? 2 * f->held_capacity : 64;
        held_t *h = realloc(f->held, cap * sizeof *h);
        if (h == NULL) {
            return false;
        }
        f->held = h;
        f->held_capacity = cap;
    }
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL) {
        return false;
    }
    memcpy(copy, wire, len);
    f->held[f->held_count++] = (held_t){due_ms, peer_index, type, copy, len, reorder};
    return true;
}

static void release(faults_t *f, size_t i, faults_send_fn send, void *arg)
{
    held_t h = f->held[i];
    f->held[i] = f->held[--f->held_count];
    (void)send(arg, h.peer_index, h.type, h.wire, h.len); /* a refused frame is just lost */
    free(h.wire);
}

int faults_send(faults_t *f, size_t peer_index, msg_type_t type, const uint8_t *wire, size_t len,
                int64_t now_ms, faults_send_fn send, void *arg)
{
    assert(f != NULL && send != NULL);
    if (f->types != 0 && (f->types & (1u << type)) == 0) {
        return send(arg, peer_index, type, wire, len);
    }
    /* Draw every decision every time, so the schedule depends only on the seed and traffic. */
    bool drop = uniform(f) < f->drop;
    bool dup = uniform(f) < f->dup;
    bool reorder = uniform(f) < f->reorder;
    int64_t delay = f->delay_ms > 0 ? (int64_t)(uniform(f) * (double)(f->delay_ms + 1)) : 0;
    if (drop) {
        f->stats.dropped++;
        return 0;
    }
    int rc = 0;
    if (reorder && hold(f, peer_index, type, wire, len, now_ms + REORDER_HOLD_MS, true)) {
        f->stats.reordered++;
    } else if (delay > 0 && hold(f, peer_index, type, wire, len, now_ms + delay, false)) {
        f->stats.delayed++;
    } else {
        rc = send(arg, peer_index, type, wire, len);
        /* a frame held for reordering goes out after this one */
        for (size_t i = 0; i < f->held_count; i++) {
            if (f->held[i].reorder && f->held[i].peer_index == peer_index) {
                release(f, i, send, arg);
                break;
            }
        }
    }
    if (dup) {
        f->stats.duplicated++;
        if (!hold(f, peer_index, type, wire, len, now_ms + (delay > 0 ? delay : 1), false)) {
            (void)send(arg, peer_index, type, wire, len);
        }
    }
    return rc;
}

void faults_flush(faults_t *f, int64_t now_ms, faults_send_fn send, void *arg)
{
    assert(f != NULL && send != NULL);
    size_t i = 0;
    while (i < f->held_count) {
        if (f->held[i].due_ms <= now_ms) {
            release(f, i, send, arg); /* moves the last entry into i */
        } else {
            i++;
        }
    }
}

int64_t faults_next_deadline(const faults_t *f)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; f != NULL && i < f->held_count; i++) {
        next = f->held[i].due_ms < next ? f->held[i].due_ms : next;
    }
    return next;
}
