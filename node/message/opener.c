/* Opening inbound frames on every core; see opener.h. */
#include "opener.h"

#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define OPENER_WORKERS_MAX 7
#define OPENER_SMALL_BATCH 32 /* fewer frames than this are opened on the calling thread */
#define OPENER_CLAIM       4  /* frames a thread takes at a time */

struct opener {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a new batch, or stop */
    pthread_cond_t done; /* a worker finished its part of the batch */
    uint64_t generation; /* bumped for every batch handed to the workers */
    size_t busy;         /* workers not yet finished with the current batch */
    bool stop;
    /* the current batch: written under lock before generation moves, then read-only */
    opener_frame_t *frames;
    size_t count;
    const identity_t *self;
    const envelope_peer_t *peers;
    size_t peers_count;
    atomic_size_t next; /* the first frame nobody has claimed */
    pthread_t threads[OPENER_WORKERS_MAX];
    size_t started;
};

/* Opens frames claimed a few at a time until none is left. */
static void open_claimed(opener_t *o)
{
    for (;;) {
        size_t i = atomic_fetch_add(&o->next, OPENER_CLAIM);
        if (i >= o->count) {
            return;
        }
        size_t end = i + OPENER_CLAIM < o->count ? i + OPENER_CLAIM : o->count;
        for (; i < end; i++) {
            opener_frame_t *f = &o->frames[i];
            f->rc = envelope_open(f->data, f->len, o->self, o->peers, o->peers_count, &f->msg);
        }
    }
}

static void *worker(void *arg)
{
    opener_t *o = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&o->lock);
    for (;;) {
        while (!o->stop && o->generation == seen) {
            pthread_cond_wait(&o->wake, &o->lock);
        }
        if (o->stop) {
            break;
        }
        seen = o->generation;
        pthread_mutex_unlock(&o->lock);
        open_claimed(o);
        pthread_mutex_lock(&o->lock);
        if (--o->busy == 0) {
            pthread_cond_signal(&o->done);
        }
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

size_t opener_default_workers(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores <= 1) {
        return 0;
    }
    return cores - 1 > OPENER_WORKERS_MAX ? OPENER_WORKERS_MAX : (size_t)(cores - 1);
}

opener_t *opener_new(size_t workers)
{
    opener_t *o = calloc(1, sizeof *o);
    if (o == NULL) {
        return NULL;
    }
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->wake, NULL);
    pthread_cond_init(&o->done, NULL);
    atomic_init(&o->next, 0);
    /* workers never take the node's signals: SIGTERM must reach the loop thread */
    sigset_t all, old;
    sigfillset(&all);
    int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL}; /* a fault stays the faulting thread's */
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        sigdelset(&all, faults[i]);
    }
    pthread_sigmask(SIG_BLOCK, &all, &old);
    workers = workers > OPENER_WORKERS_MAX ? OPENER_WORKERS_MAX : workers;
    while (o->started < workers && pthread_create(&o->threads[o->started], NULL, worker, o) == 0) {
        o->started++; /* a thread that will not start leaves fewer workers, not a failure */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return o;
}

void opener_free(opener_t **self_p)
{
    assert(self_p != NULL);
    opener_t *o = *self_p;
    if (o == NULL) {
        return;
    }
    pthread_mutex_lock(&o->lock);
    o->stop = true;
    pthread_cond_broadcast(&o->wake);
    pthread_mutex_unlock(&o->lock);
    for (size_t i = 0; i < o->started; i++) {
        pthread_join(o->threads[i], NULL);
    }
    pthread_cond_destroy(&o->done);
    pthread_cond_destroy(&o->wake);
    pthread_mutex_destroy(&o->lock);
    free(o);
    *self_p = NULL;
}

void opener_run(opener_t *o, opener_frame_t *frames, size_t count, const identity_t *self,
                const envelope_peer_t *peers, size_t peers_count)
{
    assert(o != NULL && (frames != NULL || count == 0) && self != NULL);
    pthread_mutex_lock(&o->lock);
    assert(o->busy == 0);
    o->frames = frames;
    o->count = count;
    o->self = self;
    o->peers = peers;
    o->peers_count = peers_count;
    atomic_store(&o->next, 0);
    bool share = o->started > 0 && count >= OPENER_SMALL_BATCH;
    if (share) {
        o->busy = o->started;
        o->generation++;
        pthread_cond_broadcast(&o->wake);
    }
    pthread_mutex_unlock(&o->lock);
    open_claimed(o);
    if (share) {
        pthread_mutex_lock(&o->lock);
        while (o->busy > 0) {
            pthread_cond_wait(&o->done, &o->lock);
        }
        pthread_mutex_unlock(&o->lock);
    }
}
