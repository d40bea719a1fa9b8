/* Per-peer admission, work budget and repeat cache of StatementRequests; see responder.h. */
#include "responder.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

typedef struct {
    ratelimit_t requests;
    costlimit_t work; /* entries read */
    uint64_t waited;  /* requests that could not be answered at once */
    Corridor__StatementRequest *deferred;
    uint8_t *last_body; /* the last answer, for the same request sent again */
    size_t last_len;
    char last_id[REQUEST_ID_MAX];
} peer_state_t;

struct responder {
    size_t count;
    peer_state_t *peers;
};

responder_t *responder_new(size_t peers)
{
    responder_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return NULL;
    }
    r->count = peers;
    r->peers = calloc(peers + 1, sizeof *r->peers);
    if (r->peers == NULL) {
        free(r);
        return NULL;
    }
    for (size_t i = 0; i < peers; i++) {
        ratelimit_init(&r->peers[i].requests, RESPONDER_REQUESTS_PER_S, RESPONDER_REQUESTS_BURST);
        costlimit_init(&r->peers[i].work, RESPONDER_WORK_UNIT, RESPONDER_WORK_PER_S,
                       RESPONDER_WORK_BURST);
    }
    return r;
}

void responder_free(responder_t **self_p)
{
    responder_t *r = *self_p;
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->count; i++) {
        corridor__statement_request__free_unpacked(r->peers[i].deferred, NULL);
        free(r->peers[i].last_body);
    }
    free(r->peers);
    free(r);
    *self_p = NULL;
}

bool responder_admit(responder_t *r, size_t peer, int64_t now_ms)
{
    assert(peer < r->count);
    peer_state_t *p = &r->peers[peer];
    if (costlimit_next_ms(&p->work) > now_ms || !ratelimit_take(&p->requests, now_ms)) {
        p->waited++;
        return false;
    }
    return true;
}

void responder_defer(responder_t *r, size_t peer, Corridor__StatementRequest *req)
{
    assert(peer < r->count && req != NULL);
    corridor__statement_request__free_unpacked(r->peers[peer].deferred, NULL); /* superseded */
    r->peers[peer].deferred = req;
}

static int64_t allowed_from(const peer_state_t *p)
{
    int64_t work = costlimit_next_ms(&p->work);
    int64_t requests = ratelimit_next_ms(&p->requests);
    return work > requests ? work : requests;
}

Corridor__StatementRequest *responder_release(responder_t *r, size_t peer, int64_t now_ms)
{
    assert(peer < r->count);
    peer_state_t *p = &r->peers[peer];
    if (p->deferred == NULL || allowed_from(p) > now_ms || !ratelimit_take(&p->requests, now_ms)) {
        return NULL;
    }
    Corridor__StatementRequest *req = p->deferred;
    p->deferred = NULL;
    return req;
}

int64_t responder_next_ms(const responder_t *r)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < r->count; i++) {
        if (r->peers[i].deferred != NULL) {
            int64_t t = allowed_from(&r->peers[i]);
            next = t < next ? t : next;
        }
    }
    return next;
}

static uint8_t *copy_of(const uint8_t *bytes, size_t len)
{
    uint8_t *copy = malloc(len);
    if (copy != NULL) {
        memcpy(copy, bytes, len);
    }
    return copy;
}

ledger_err_t responder_answer(responder_t *r, size_t peer, const recon_ctx_t *ctx,
                              const Corridor__StatementRequest *req, int64_t now_ms, uint8_t **body,
                              size_t *len, bool *rebased)
{
    assert(peer < r->count && ctx != NULL && req != NULL && body && len && rebased);
    peer_state_t *p = &r->peers[peer];
    *body = NULL;
    *len = 0;
    *rebased = false;
    bool cacheable = req->request_id != NULL && strlen(req->request_id) < sizeof p->last_id;
    if (cacheable && p->last_body != NULL && strcmp(req->request_id, p->last_id) == 0) {
        *body = copy_of(p->last_body, p->last_len); /* the requester did not hear us */
        *len = *body != NULL ? p->last_len : 0;
        return LEDGER_OK;
    }
    uint64_t work = 0;
    ledger_err_t rc = recon_answer(ctx, req, body, len, rebased, &work);
    costlimit_charge(&p->work, now_ms, work);
    if (rc == LEDGER_OK && *body != NULL && cacheable) {
        uint8_t *copy = copy_of(*body, *len);
        if (copy != NULL) {
            free(p->last_body);
            p->last_body = copy;
            p->last_len = *len;
            strcpy(p->last_id, req->request_id);
        }
    }
    return rc;
}

bool responder_may_work(const responder_t *r, size_t peer, int64_t now_ms)
{
    assert(peer < r->count);
    return costlimit_next_ms(&r->peers[peer].work) <= now_ms;
}

void responder_forget_answers(responder_t *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->peers[i].last_body);
        r->peers[i].last_body = NULL;
        r->peers[i].last_len = 0;
        r->peers[i].last_id[0] = '\0';
    }
}

uint64_t responder_refused(const responder_t *r, size_t peer)
{
    assert(peer < r->count);
    return r->peers[peer].waited;
}
