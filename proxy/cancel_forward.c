/*
 * cancel_forward: cancels sent on to the peer instance their key names
 * (cancel_forward.h). Each forward is a libevent bufferevent that connects,
 * writes the PROXY header and the packet queued before the connect, and is
 * freed once they are written, on an error, or at its deadline.
 */
#include "proxy/cancel_forward.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proxy/pgwire.h"
#include "proxy/proxy_protocol.h"

typedef struct forward {
    struct cancel_forwarder *f;
    struct bufferevent *bev;
    struct event *deadline;
    struct forward *prev, *next;
    bool in_connect;          /* inside bufferevent_socket_connect */
    bool failed_in_connect;   /* ... which reported an error before returning */
    int peer_id;
    char peer[64];        /* the peer's address as configured */
    char client[80];      /* "addr:port" of the canceller, for the log */
} forward;

struct cancel_forwarder {
    struct event_base *base;
    uint64_t *sent;
    forward *list;
    size_t n;
    log_rate sent_lines, drop_lines, failure_lines;
};

cancel_forwarder *cancel_forwarder_new(struct event_base *base, uint64_t *sent)
{
    cancel_forwarder *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->base = base;
    f->sent = sent;
    return f;
}

static void finish(forward *fw)
{
    cancel_forwarder *f = fw->f;
    if (fw->prev)
        fw->prev->next = fw->next;
    else
        f->list = fw->next;
    if (fw->next)
        fw->next->prev = fw->prev;
    f->n--;
    if (fw->bev)
        bufferevent_free(fw->bev);   /* closes the socket (BEV_OPT_CLOSE_ON_FREE) */
    if (fw->deadline)
        event_free(fw->deadline);
    free(fw);
}

void cancel_forwarder_free(cancel_forwarder *f)
{
    if (!f)
        return;
    if (f->n)
        log_msg(LOG_INFO, "dropping %zu cancel requests still on their way to peers", f->n);
    while (f->list)
        finish(f->list);
    free(f);
}

static void failed(forward *fw, const char *why)
{
    unsigned long more;
    if (log_rate_ok(&fw->f->failure_lines, &more))
        log_msg(LOG_WARNING, "cancel request from %s for peer %d (%s) not delivered: %s%s", fw->client,
                fw->peer_id, fw->peer, why, more ? " (and more failed the last second)" : "");
    finish(fw);
}

/* The output buffer is empty: the header and the packet are written. */
static void on_written(struct bufferevent *bev, void *arg)
{
    forward *fw = arg;
    (void)bev;
    (*fw->f->sent)++;
    unsigned long more;
    if (log_rate_ok(&fw->f->sent_lines, &more))
        log_msg(LOG_INFO, "cancel request from %s sent to peer %d (%s)%s", fw->client, fw->peer_id, fw->peer,
                more ? " (and more sent to peers the last second)" : "");
    finish(fw);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    forward *fw = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED)
        return;   /* the queued bytes go out now; on_written follows */
    if (fw->in_connect) {
        fw->failed_in_connect = true;   /* cancel_forward frees it */
        return;
    }
    int e = EVUTIL_SOCKET_ERROR();
    failed(fw, (what & BEV_EVENT_EOF) ? "the peer closed the connection" : evutil_socket_error_to_string(e));
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    char why[64];
    snprintf(why, sizeof why, "no answer to the connect within %d ms", CANCEL_FORWARD_TIMEOUT_MS);
    failed(arg, why);
}

int cancel_forward(cancel_forwarder *f, const config_peer *peer, uint32_t pid, uint32_t key,
                   const char *client_addr, int client_port)
{
    if (!f)
        return -1;
    char client[80];
    snprintf(client, sizeof client, "%s:%d", client_addr, client_port);
    if (f->n >= CANCEL_FORWARD_MAX_IN_FLIGHT) {
        unsigned long more;
        if (log_rate_ok(&f->drop_lines, &more))
            log_msg(LOG_WARNING, "cancel request from %s for peer %d dropped: %d already on their way to peers%s",
                    client, peer->id, CANCEL_FORWARD_MAX_IN_FLIGHT,
                    more ? " (and more dropped the last second)" : "");
        return -1;
    }
    forward *fw = calloc(1, sizeof *fw);
    if (!fw) {
        log_msg(LOG_ERROR, "out of memory forwarding a cancel request to peer %d", peer->id);
        return -1;
    }
    fw->f = f;
    fw->peer_id = peer->id;
    snprintf(fw->peer, sizeof fw->peer, "%s", peer->address);
    snprintf(fw->client, sizeof fw->client, "%s", client);
    fw->next = f->list;
    if (f->list)
        f->list->prev = fw;
    f->list = fw;
    f->n++;

    fw->bev = bufferevent_socket_new(f->base, -1, BEV_OPT_CLOSE_ON_FREE);
    fw->deadline = evtimer_new(f->base, on_deadline, fw);
    if (!fw->bev || !fw->deadline) {
        log_msg(LOG_ERROR, "out of memory forwarding a cancel request to peer %d", peer->id);
        finish(fw);
        return -1;
    }
    /* queued before the connect: written once it is established */
    struct evbuffer *out = bufferevent_get_output(fw->bev);
    int rc = 0;
    if (peer->proxy_protocol) {
        uint8_t hdr[PROXY_V2_BUILD_MAX_BYTES];
        size_t n = proxy_header_v2_build(hdr, client_addr, client_port, (const struct sockaddr *)&peer->addr);
        rc |= evbuffer_add(out, hdr, n);
    }
    unsigned char pkt[PG_CANCEL_PACKET_BYTES];
    pgw_cancel_packet(pkt, PG_FORWARDED_CANCEL_CODE, pid, key);
    rc |= evbuffer_add(out, pkt, sizeof pkt);
    if (rc != 0) {
        log_msg(LOG_ERROR, "out of memory forwarding a cancel request to peer %d", peer->id);
        finish(fw);
        return -1;
    }
    /* When the connect fails at once, libevent calls the event callback
     * before bufferevent_socket_connect returns -1: noted, and the forward
     * freed here. Every other outcome (a refusal too) comes through the
     * loop, after this function returned. */
    bufferevent_setcb(fw->bev, NULL, on_written, on_event, fw);
    struct sockaddr_storage addr = peer->addr;
    fw->in_connect = true;
    rc = bufferevent_socket_connect(fw->bev, (struct sockaddr *)&addr, peer->addrlen);
    fw->in_connect = false;
    if (rc != 0 || fw->failed_in_connect) {
        int e = EVUTIL_SOCKET_ERROR();
        failed(fw, e ? evutil_socket_error_to_string(e) : "the connect failed");
        return -1;
    }
    struct timeval tv = {CANCEL_FORWARD_TIMEOUT_MS / 1000, (CANCEL_FORWARD_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(fw->deadline, &tv);
    return 0;
}
