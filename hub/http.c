/* The hub's HTTP endpoint: libmicrohttpd in epoll mode without a thread,
 * run from the libuv loop whenever its epoll fd is readable or its timeout
 * passes, so every answer is made on the loop thread. */
#include "hub/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "hub/prom.h"

struct gd_http_s {
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int closing;
    gd_http_metrics_fn fn;
    void *ctx;
    int port;
};

int gd_http_accepts_gzip(const char *ae)
{
    if (!ae) return 0;
    for (const char *p = ae; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ')
            p++;
        size_t len = (size_t)(p - tok);
        int gzip = (len == 4 && strncasecmp(tok, "gzip", 4) == 0) || (len == 1 && tok[0] == '*');
        /* Parameters up to the next comma: "q=0" (or 0.0...) refuses it. */
        int refused = 0;
        while (*p && *p != ',') {
            if (*p == ';') {
                p++;
                while (*p == ' ')
                    p++;
                if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                    char *end;
                    double q = strtod(p + 2, &end);
                    refused = q <= 0.0;
                    p = end;
                    continue;
                }
            }
            if (*p && *p != ',') p++;
        }
        if (gzip && !refused) return 1;
    }
    return 0;
}

static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_metrics(gd_http_t *h, struct MHD_Connection *c)
{
    const char *ae =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    int gzip = gd_http_accepts_gzip(ae);
    gd_buf_t body;
    gd_buf_init(&body);
    if (h->fn(h->ctx, gzip, &body) < 0) {
        gd_buf_free(&body);
        return answer_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "could not render the metrics\n");
    }
    /* The body's memory goes to libmicrohttpd, freed once it is sent. */
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(body.len, body.data, free);
    if (!r) {
        gd_buf_free(&body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, GD_PROM_CONTENT_TYPE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gzip) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    static int seen; /* an address only: marks a request's first call */
    gd_http_t *h = cls;
    (void)version;
    (void)upload;
    if (*req_cls == NULL) {
        *req_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size != 0) { /* a body nobody reads: drop it */
        *upload_size = 0;
        return MHD_YES;
    }
    int known = strcmp(url, "/metrics") == 0 || strcmp(url, "/healthz") == 0;
    if (!known) return answer_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/healthz") == 0) return answer_text(c, MHD_HTTP_OK, "ok\n");
    return answer_metrics(h, c);
}

static void run_mhd(gd_http_t *h);

static void on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run_mhd(p->data);
}

/* Lets libmicrohttpd do what is ready, then wakes it when it next wants. */
static void run_mhd(gd_http_t *h)
{
    if (h->closing) return;
    MHD_run(h->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
        uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
    else
        uv_timer_stop(&h->timer);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        snprintf(err, errlen, "http.listen: %s: not HOST:PORT", listen);
        return -EINVAL;
    }
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
        listen++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host)) {
        snprintf(err, errlen, "http.listen: %s: no host", listen);
        return -EINVAL;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0) return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0) return 0;
    snprintf(err, errlen, "http.listen: %s: not an IP address", host);
    return -EINVAL;
}

int gd_http_start(gd_http_t **out, uv_loop_t *loop, const char *listen, gd_http_metrics_fn fn,
                  void *ctx, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int r = parse_listen(listen, &ss, err, errlen);
    if (r < 0) return r;
    gd_http_t *h = calloc(1, sizeof(*h));
    if (!h) return -ENOMEM;
    h->loop = loop;
    h->fn = fn;
    h->ctx = ctx;
    unsigned flags = MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                              MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(err, errlen, "http.listen: %s: cannot listen (address in use, or not local)",
                 listen);
        free(h);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *epfd = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = port ? port->port : 0;
    if (!epfd || uv_poll_init(loop, &h->poll, epfd->epoll_fd) != 0) {
        snprintf(err, errlen, "http: no epoll fd from libmicrohttpd");
        MHD_stop_daemon(h->mhd);
        free(h);
        return -EINVAL;
    }
    uv_timer_init(loop, &h->timer);
    h->poll.data = h;
    h->timer.data = h;
    uv_poll_start(&h->poll, UV_READABLE, on_poll);
    run_mhd(h);
    *out = h;
    return 0;
}

int gd_http_port(const gd_http_t *h)
{
    return h->port;
}

static void on_closed(uv_handle_t *handle)
{
    gd_http_t *h = handle->data;
    if (--h->closing == 0) free(h);
}

void gd_http_stop(gd_http_t *h)
{
    if (!h || h->closing) return;
    /* The poll handle stops watching before the daemon closes its fd. */
    uv_poll_stop(&h->poll);
    uv_timer_stop(&h->timer);
    MHD_stop_daemon(h->mhd);
    h->mhd = NULL;
    h->closing = 2;
    uv_close((uv_handle_t *)&h->poll, on_closed);
    uv_close((uv_handle_t *)&h->timer, on_closed);
}
