/*
 * ops_http: the operations listener (config "metrics"), libevent's evhttp on
 * the server's event loop: /metrics (Prometheus text format, behind an
 * optional bearer token), /healthz (the process serves) and /readyz (a
 * policy is loaded when one is configured, each warehouse accepted a
 * connection within metrics.ready_warehouse_seconds, the audit queue is not
 * full), each answered with a short JSON body that says why. While no
 * session has opened a warehouse connection lately, a probe opens (and
 * closes) one, so an idle martgate stays ready when its warehouses are.
 */
#ifndef MARTGATE_OPS_HTTP_H
#define MARTGATE_OPS_HTTP_H

struct server;
typedef struct ops_http ops_http;

/* NULL with err filled when the address cannot be bound; NULL and err ""
 * when the configuration has no metrics listener. */
ops_http *ops_http_start(struct server *srv, char *err, unsigned long errlen);
void ops_http_free(ops_http *h);

#endif
