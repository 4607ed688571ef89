/* Check suite for the hub's HTTP endpoint (hub/http.c): libmicrohttpd run
 * from a libuv loop answers a plain socket client in another thread:
 * /metrics with the exposition's Content-Type, gzip when asked, /healthz,
 * 404 and 405; the loop closes cleanly after gd_http_stop. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>
#include <zlib.h>

#include "hub/http.h"
#include "hub/prom.h"

static const char body_text[] =
    "# HELP guestd_up x\n# TYPE guestd_up gauge\nguestd_up{domain=\"a\"} 1\n";

static int calls, last_gzip;

static int metrics(void *ctx, int gzip, gd_buf_t *out)
{
    (void)ctx;
    calls++;
    last_gzip = gzip;
    if (!gzip) return gd_buf_puts(out, body_text);
    uLong bound = compressBound(sizeof(body_text)) + 32;
    if (gd_buf_reserve(out, bound) != 0) return -1;
    z_stream z = {0};
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)(uintptr_t)body_text;
    z.avail_in = sizeof(body_text) - 1;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)bound;
    deflate(&z, Z_FINISH);
    out->len = bound - z.avail_out;
    deflateEnd(&z);
    return 0;
}

/* ---- a blocking client in its own thread ---- */

typedef struct exchange_s {
    const char *request;
    char response[8192];
    size_t len;
} exchange_t;

typedef struct client_s {
    int port;
    exchange_t *ex;
    size_t n;
    uv_async_t done;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        exchange_t *e = &c->ex[i];
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            ssize_t w = write(fd, e->request, strlen(e->request));
            (void)w;
            ssize_t r;
            while (e->len < sizeof(e->response) - 1 &&
                   (r = read(fd, e->response + e->len, sizeof(e->response) - 1 - e->len)) > 0)
                e->len += (size_t)r;
        }
        e->response[e->len] = '\0';
        close(fd);
    }
    uv_async_send(&c->done);
    return NULL;
}

static gd_http_t *server;

static void on_done(uv_async_t *a)
{
    gd_http_stop(server);
    uv_close((uv_handle_t *)a, NULL);
}

/* Runs the exchanges against a server on 127.0.0.1:0 until the client is done. */
static void run_exchanges(exchange_t *ex, size_t n)
{
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    char err[256] = "";
    ck_assert_msg(gd_http_start(&server, &loop, "127.0.0.1:0", metrics, NULL, err, sizeof(err)) ==
                      0,
                  "%s", err);
    client_t c = {gd_http_port(server), ex, n, {0}};
    ck_assert_int_gt(c.port, 0);
    uv_async_init(&loop, &c.done, on_done);
    pthread_t t;
    pthread_create(&t, NULL, client_main, &c);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    ck_assert_int_eq(uv_loop_close(&loop), 0); /* every handle closed */
}

static const char *body_of(const exchange_t *e, size_t *len)
{
    const char *b = strstr(e->response, "\r\n\r\n");
    ck_assert_ptr_nonnull(b);
    *len = e->len - (size_t)(b + 4 - e->response);
    return b + 4;
}

START_TEST(test_metrics_plain_and_gzip)
{
    exchange_t ex[2] = {
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "", 0},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
         "", 0},
    };
    calls = 0;
    run_exchanges(ex, 2);
    ck_assert_int_eq(calls, 2);
    ck_assert_msg(strncmp(ex[0].response, "HTTP/1.1 200", 12) == 0, "%s", ex[0].response);
    ck_assert_ptr_nonnull(
        strstr(ex[0].response, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    ck_assert_ptr_null(strstr(ex[0].response, "Content-Encoding"));
    size_t len;
    const char *b = body_of(&ex[0], &len);
    ck_assert_uint_eq(len, strlen(body_text));
    ck_assert_int_eq(memcmp(b, body_text, len), 0);

    ck_assert_msg(strncmp(ex[1].response, "HTTP/1.1 200", 12) == 0, "%s", ex[1].response);
    ck_assert_ptr_nonnull(strstr(ex[1].response, "\r\nContent-Encoding: gzip\r\n"));
    b = body_of(&ex[1], &len);
    char plain[512];
    z_stream z = {0};
    inflateInit2(&z, 16 + MAX_WBITS);
    z.next_in = (Bytef *)(uintptr_t)b;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)plain;
    z.avail_out = sizeof(plain);
    ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(sizeof(plain) - z.avail_out, strlen(body_text));
    ck_assert_int_eq(memcmp(plain, body_text, strlen(body_text)), 0);
    inflateEnd(&z);
}
END_TEST

START_TEST(test_healthz_404_405)
{
    exchange_t ex[6] = {
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "", 0},
        {"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "", 0},
        {"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
         "", 0},
        {"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", "", 0}, /* no Host */
        {"garbage\r\n\r\n", "", 0},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "", 0},
    };
    calls = 0;
    run_exchanges(ex, 6);
    ck_assert_int_eq(calls, 0);
    ck_assert_msg(strncmp(ex[0].response, "HTTP/1.1 200", 12) == 0, "%s", ex[0].response);
    size_t len;
    const char *b = body_of(&ex[0], &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(b, "ok\n", 3), 0);
    ck_assert_msg(strncmp(ex[1].response, "HTTP/1.1 404", 12) == 0, "%s", ex[1].response);
    ck_assert_msg(strncmp(ex[2].response, "HTTP/1.1 405", 12) == 0, "%s", ex[2].response);
    ck_assert_ptr_nonnull(strstr(ex[2].response, "\r\nAllow: GET, HEAD\r\n"));
    ck_assert_msg(strncmp(ex[3].response, "HTTP/1.1 400", 12) == 0, "%s", ex[3].response);
    /* Garbage is libmicrohttpd's to refuse; the server goes on. */
    ck_assert_msg(strncmp(ex[5].response, "HTTP/1.1 200", 12) == 0, "%s", ex[5].response);
}
END_TEST

START_TEST(test_accept_encoding)
{
    ck_assert(gd_http_accepts_gzip("gzip"));
    ck_assert(gd_http_accepts_gzip("deflate, gzip;q=0.5"));
    ck_assert(gd_http_accepts_gzip("GZIP"));
    ck_assert(gd_http_accepts_gzip("*"));
    ck_assert(gd_http_accepts_gzip("identity, gzip"));
    ck_assert(!gd_http_accepts_gzip(NULL));
    ck_assert(!gd_http_accepts_gzip(""));
    ck_assert(!gd_http_accepts_gzip("deflate"));
    ck_assert(!gd_http_accepts_gzip("gzip;q=0"));
    ck_assert(!gd_http_accepts_gzip("gzip; q=0.0, br"));
    ck_assert(!gd_http_accepts_gzip("x-gzip2"));
}
END_TEST

START_TEST(test_bad_listen_and_port_in_use)
{
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    char err[256] = "";
    gd_http_t *h = NULL;
    ck_assert_int_eq(gd_http_start(&h, &loop, "localhost", metrics, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "http.listen: localhost: not HOST:PORT");
    ck_assert_int_eq(gd_http_start(&h, &loop, "nohost:80", metrics, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "http.listen: nohost: not an IP address");
    ck_assert_int_eq(gd_http_start(&h, &loop, "127.0.0.1:0", metrics, NULL, err, sizeof(err)), 0);
    char busy[64];
    snprintf(busy, sizeof(busy), "127.0.0.1:%d", gd_http_port(h));
    gd_http_t *h2 = NULL;
    ck_assert_int_eq(gd_http_start(&h2, &loop, busy, metrics, NULL, err, sizeof(err)), -EADDRINUSE);
    ck_assert_ptr_nonnull(strstr(err, "cannot listen"));
    gd_http_stop(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("hub_prom_http");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_metrics_plain_and_gzip);
    tcase_add_test(tc, test_healthz_404_405);
    tcase_add_test(tc, test_accept_encoding);
    tcase_add_test(tc, test_bad_listen_and_port_in_use);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
