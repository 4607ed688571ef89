/* Check suite for agent/bus: fan-out order, shared bytes, lag, pause and
 * resume, (un)subscribing from callbacks, reference counts and shutdown. */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"

#define CLOCK_MS 1795317741581LL

/* ---- harness: a real loop and a bus on the test's stack ----------------- */

typedef struct {
    uv_loop_t loop;
    gd_bus_t bus;
    int closed;
} harness_t;

static char call_log[1024];

static void log_call(char who, uint64_t seq)
{
    size_t used = strlen(call_log);
    snprintf(call_log + used, sizeof(call_log) - used, "%c%llu ", who, (unsigned long long)seq);
}

static int64_t fixed_clock(void)
{
    return CLOCK_MS;
}

static void harness_init(harness_t *h)
{
    memset(h, 0, sizeof(*h));
    call_log[0] = '\0';
    ck_assert_uint_eq(gd_event_live_count(), 0);
    ck_assert_int_eq(uv_loop_init(&h->loop), 0);
    ck_assert_int_eq(gd_bus_init(&h->bus, &h->loop), 0);
    h->bus.now_ms = fixed_clock;
}

static void on_bus_closed(uv_handle_t *handle)
{
    gd_bus_t *bus = handle->data;
    harness_t *h = (harness_t *)((char *)bus - offsetof(harness_t, bus));
    h->closed++;
}

/* Closes the bus, lets the loop finish, and checks nothing is left behind. */
static void harness_close(harness_t *h)
{
    gd_bus_close(&h->bus, on_bus_closed);
    ck_assert_int_eq(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(h->closed, 1);
    ck_assert_int_eq(uv_loop_close(&h->loop), 0);
    ck_assert_uint_eq(gd_event_live_count(), 0);
}

/* One idle pass. Returns what uv_run returns: 0 when nothing is left active,
 * so 0 also says the bus stopped its idle handle. */
static int run_once(harness_t *h)
{
    return uv_run(&h->loop, UV_RUN_NOWAIT);
}

/* ---- a recording subscriber ------------------------------------------- */

typedef struct test_sub_s test_sub_t;
struct test_sub_s {
    gd_bus_sub_t sub;
    harness_t *h;
    char id;
    int n;
    uint64_t seen[32];
    gd_event_t *held[32]; /* references taken when keep is set */
    int keep;
    int refused;
    /* What to do on an event (after it is recorded); the return value is the
     * deliver callback's. May free ts. */
    int (*hook)(test_sub_t *ts, gd_event_t *ev);
    test_sub_t *other;
};

static int record(gd_bus_sub_t *sub, gd_event_t *ev)
{
    test_sub_t *ts = sub->data;
    log_call(ts->id, ev->seq);
    ck_assert_int_lt(ts->n, 32);
    if (ts->keep) ts->held[ts->n] = gd_event_ref(ev);
    ts->seen[ts->n++] = ev->seq;
    return ts->hook ? ts->hook(ts, ev) : 0;
}

static void sub_init(harness_t *h, test_sub_t *ts, char id, size_t capacity)
{
    memset(ts, 0, sizeof(*ts));
    ts->h = h;
    ts->id = id;
    ck_assert_int_eq(gd_bus_subscribe(&h->bus, &ts->sub, "test", capacity, record, ts), 0);
}

static test_sub_t *sub_new(harness_t *h, char id, size_t capacity)
{
    test_sub_t *ts = malloc(sizeof(*ts));
    ck_assert_ptr_nonnull(ts);
    sub_init(h, ts, id, capacity);
    return ts;
}

static void drop_held(test_sub_t *ts)
{
    for (int i = 0; i < ts->n; i++) {
        gd_event_unref(ts->held[i]);
        ts->held[i] = NULL;
    }
}

static uint64_t publish_i(harness_t *h, int i)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "i", i);
    uint64_t seq = gd_bus_publish(&h->bus, "tick", data);
    cJSON_Delete(data);
    return seq;
}

static gd_event_t *queue_head(const test_sub_t *ts)
{
    return ts->sub.count ? ts->sub.ring[ts->sub.head] : NULL;
}

/* ---- fan-out ----------------------------------------------------------- */

START_TEST(test_fanout_order)
{
    harness_t h;
    test_sub_t a, b, c;
    harness_init(&h);
    sub_init(&h, &a, 'A', 8);
    sub_init(&h, &b, 'B', 8);
    sub_init(&h, &c, 'C', 8);

    for (int i = 1; i <= 5; i++)
        ck_assert_uint_eq(publish_i(&h, i), (uint64_t)i);
    /* Delivery waits for the loop. */
    ck_assert_str_eq(call_log, "");
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A1 A2 A3 A4 A5 B1 B2 B3 B4 B5 C1 C2 C3 C4 C5 ");

    call_log[0] = '\0';
    publish_i(&h, 6);
    publish_i(&h, 7);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A6 A7 B6 B7 C6 C7 ");

    ck_assert_uint_eq(a.sub.delivered, 7);
    ck_assert_uint_eq(b.sub.delivered, 7);
    ck_assert_uint_eq(c.sub.delivered, 7);
    ck_assert_uint_eq(h.bus.published, 7);
    ck_assert_uint_eq(h.bus.next_seq, 8);
    harness_close(&h);
}
END_TEST

START_TEST(test_same_bytes_for_everyone)
{
    static const char expected[] =
        "{\"event\":\"metrics\",\"seq\":1,\"ts\":1795317741581,\"data\":"
        "{\"cpu\":{\"user\":12,\"system\":3},\"host\":\"vm-1\",\"disks\":[\"vda\",\"vdb\"]}}\n";
    static const char expected_data[] =
        "{\"cpu\":{\"user\":12,\"system\":3},\"host\":\"vm-1\",\"disks\":[\"vda\",\"vdb\"]}";
    harness_t h;
    test_sub_t s[3];
    harness_init(&h);
    for (int i = 0; i < 3; i++) {
        sub_init(&h, &s[i], (char)('A' + i), 4);
        s[i].keep = 1;
    }

    cJSON *data = cJSON_CreateObject();
    cJSON *cpu = cJSON_AddObjectToObject(data, "cpu");
    cJSON_AddNumberToObject(cpu, "user", 12);
    cJSON_AddNumberToObject(cpu, "system", 3);
    cJSON_AddStringToObject(data, "host", "vm-1");
    const char *disks[] = {"vda", "vdb"};
    cJSON_AddItemToObject(data, "disks", cJSON_CreateStringArray(disks, 2));
    ck_assert_uint_eq(gd_bus_publish(&h.bus, "metrics", data), 1);
    cJSON_Delete(data);
    ck_assert_int_eq(run_once(&h), 0);

    gd_event_t *ev = s[0].held[0];
    ck_assert_ptr_nonnull(ev);
    ck_assert_ptr_eq(s[1].held[0], ev);
    ck_assert_ptr_eq(s[2].held[0], ev);
    ck_assert_str_eq(ev->line, expected);
    ck_assert_uint_eq(ev->len, strlen(expected));
    ck_assert_str_eq(ev->name, "metrics");
    ck_assert_uint_eq(ev->seq, 1);
    ck_assert_int_eq(ev->ts_ms, CLOCK_MS);
    ck_assert_uint_eq(ev->data_len, strlen(expected_data));
    ck_assert_int_eq(memcmp(ev->line + ev->data_off, expected_data, ev->data_len), 0);
    ck_assert_uint_eq(ev->refs, 3);

    for (int i = 0; i < 3; i++)
        drop_held(&s[i]);
    harness_close(&h);
}
END_TEST

START_TEST(test_event_lines)
{
    /* No data is an empty object. */
    gd_event_t *ev = gd_event_new("hello", 1, 1000, NULL);
    ck_assert_str_eq(ev->line, "{\"event\":\"hello\",\"seq\":1,\"ts\":1000,\"data\":{}}\n");
    ck_assert_uint_eq(ev->data_len, 2);
    ck_assert_int_eq(memcmp(ev->line + ev->data_off, "{}", 2), 0);
    gd_event_unref(ev);

    /* Raw data is copied as is; names are escaped. */
    ev = gd_event_new_raw("a\"b\n", 18446744073709551615ULL, -5, "[1,2,3]", 7);
    ck_assert_str_eq(ev->line, "{\"event\":\"a\\\"b\\n\",\"seq\":18446744073709551615,\"ts\":-5,"
                               "\"data\":[1,2,3]}\n");
    ck_assert_uint_eq(ev->len, strlen(ev->line));
    ck_assert_uint_eq(ev->data_len, 7);
    ck_assert_int_eq(memcmp(ev->line + ev->data_off, "[1,2,3]", 7), 0);
    ck_assert_uint_eq(gd_event_live_count(), 1);

    /* The line parses, and the data slice can be reused without parsing. */
    cJSON *parsed = cJSON_ParseWithLength(ev->line, ev->len);
    ck_assert_ptr_nonnull(parsed);
    ck_assert_str_eq(cJSON_GetObjectItem(parsed, "event")->valuestring, "a\"b\n");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(parsed, "data")), 3);
    cJSON_Delete(parsed);

    char slice[16];
    memcpy(slice, ev->line + ev->data_off, ev->data_len);
    slice[ev->data_len] = '\0';
    cJSON *wrap = cJSON_CreateObject();
    cJSON_AddItemToObject(wrap, "sample", cJSON_CreateRaw(slice));
    char *out = cJSON_PrintUnformatted(wrap);
    ck_assert_str_eq(out, "{\"sample\":[1,2,3]}");
    cJSON_free(out);
    cJSON_Delete(wrap);

    ck_assert_ptr_eq(gd_event_ref(ev), ev);
    ck_assert_uint_eq(ev->refs, 2);
    gd_event_unref(ev);
    ck_assert_uint_eq(gd_event_live_count(), 1);
    gd_event_unref(ev);
    ck_assert_uint_eq(gd_event_live_count(), 0);
}
END_TEST

static int64_t ticking_ms;
static int64_t ticking_clock(void)
{
    return ticking_ms++;
}

START_TEST(test_seq_and_clock)
{
    harness_t h;
    test_sub_t a;
    harness_init(&h);
    ticking_ms = 5000;
    h.bus.now_ms = ticking_clock;

    /* Without subscribers events still take seqs and are freed at once. */
    ck_assert_uint_eq(gd_bus_publish_raw(&h.bus, "x", "1", 1), 1);
    ck_assert_uint_eq(gd_bus_publish_raw(&h.bus, "x", "2", 1), 2);
    ck_assert_uint_eq(gd_event_live_count(), 0);
    ck_assert(!uv_is_active((uv_handle_t *)&h.bus.idle));

    sub_init(&h, &a, 'A', 4);
    a.keep = 1;
    ck_assert_uint_eq(gd_bus_publish_raw(&h.bus, "x", "3", 1), 3);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A3 ");
    ck_assert_int_eq(a.held[0]->ts_ms, 5002);
    ck_assert_str_eq(a.held[0]->line, "{\"event\":\"x\",\"seq\":3,\"ts\":5002,\"data\":3}\n");
    drop_held(&a);
    ck_assert_uint_eq(h.bus.published, 3);

    /* A seq taken for an event built outside the bus is not reused. */
    ck_assert_uint_eq(gd_bus_take_seq(&h.bus), 4);
    ck_assert_uint_eq(gd_bus_publish_raw(&h.bus, "x", "5", 1), 5);
    gd_event_t *ev = gd_event_new("hello", 6, 0, NULL);
    gd_bus_publish_event(&h.bus, ev); /* its seq is the caller's */
    ck_assert_uint_eq(ev->refs, 2);
    gd_event_unref(ev);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A3 A5 A6 ");
    ck_assert_uint_eq(h.bus.published, 5);
    drop_held(&a);
    harness_close(&h);
}
END_TEST

/* ---- lag --------------------------------------------------------------- */

START_TEST(test_lag_full_queue)
{
    harness_t h;
    test_sub_t a, b;
    harness_init(&h);
    sub_init(&h, &a, 'A', 4);
    sub_init(&h, &b, 'B', 16);

    for (int i = 1; i <= 10; i++)
        ck_assert_uint_eq(publish_i(&h, i), (uint64_t)i);
    ck_assert_uint_eq(a.sub.count, 4);
    ck_assert_uint_eq(a.sub.lagged, 6);
    ck_assert_int_eq(run_once(&h), 0);

    ck_assert_str_eq(call_log, "A7 A8 A9 A10 B1 B2 B3 B4 B5 B6 B7 B8 B9 B10 ");
    ck_assert_uint_eq(a.sub.lagged, 6);
    ck_assert_uint_eq(a.sub.delivered, 4);
    ck_assert_uint_eq(b.sub.lagged, 0);
    ck_assert_uint_eq(b.sub.delivered, 10);
    ck_assert_uint_eq(gd_bus_total_lagged(&h.bus), 6);
    harness_close(&h);
}
END_TEST

static int refuse_first(test_sub_t *ts, gd_event_t *ev)
{
    if (!ts->refused) {
        ts->refused = 1;
        return 1;
    }
    return 0;
}

START_TEST(test_lag_while_paused)
{
    harness_t h;
    test_sub_t a;
    harness_init(&h);
    sub_init(&h, &a, 'A', 2);
    a.hook = refuse_first;

    publish_i(&h, 1);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A1 ");
    ck_assert(a.sub.paused);

    /* The publisher does not wait for the paused subscriber: its oldest
     * events go, the refused one first. */
    for (int i = 2; i <= 5; i++)
        publish_i(&h, i);
    ck_assert_uint_eq(a.sub.lagged, 3);
    ck_assert_uint_eq(queue_head(&a)->seq, 4);

    gd_bus_sub_resume(&a.sub);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A1 A4 A5 ");
    ck_assert_uint_eq(a.sub.delivered, 2);
    harness_close(&h);
}
END_TEST

/* ---- refusal, pause, resume ------------------------------------------- */

static int refuse_seq2_once(test_sub_t *ts, gd_event_t *ev)
{
    if (ev->seq == 2 && !ts->refused) {
        ts->refused = 1;
        return 1;
    }
    return 0;
}

START_TEST(test_refuse_pause_resume)
{
    harness_t h;
    test_sub_t a, b;
    harness_init(&h);
    sub_init(&h, &a, 'A', 8);
    sub_init(&h, &b, 'B', 8);
    a.hook = refuse_seq2_once;
    a.keep = 1;

    for (int i = 1; i <= 3; i++)
        publish_i(&h, i);
    /* One pass; the paused subscriber does not keep the idle running. */
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A1 A2 B1 B2 B3 ");
    ck_assert(a.sub.paused);
    ck_assert_uint_eq(a.sub.count, 2);
    ck_assert_ptr_eq(queue_head(&a), a.held[1]);
    ck_assert_uint_eq(a.sub.delivered, 1);

    /* Others keep receiving while A is paused. */
    call_log[0] = '\0';
    publish_i(&h, 4);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "B4 ");
    ck_assert_uint_eq(a.sub.count, 3);

    /* Only a paused subscriber with a queue: the idle is not even started. */
    gd_bus_unsubscribe(&b.sub);
    publish_i(&h, 5);
    ck_assert(!uv_is_active((uv_handle_t *)&h.bus.idle));
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "B4 ");

    /* Resume redelivers the refused event (the same one) first. */
    gd_bus_sub_resume(&a.sub);
    ck_assert(!a.sub.paused);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "B4 A2 A3 A4 A5 ");
    ck_assert_ptr_eq(a.held[2], a.held[1]);
    ck_assert_uint_eq(a.sub.delivered, 5);
    ck_assert_uint_eq(a.sub.lagged, 0);
    drop_held(&a);
    harness_close(&h);
}
END_TEST

static int resume_other(test_sub_t *ts, gd_event_t *ev)
{
    gd_bus_sub_resume(&ts->other->sub);
    return 0;
}

START_TEST(test_resume_from_callback)
{
    harness_t h;
    test_sub_t a, b;
    harness_init(&h);
    sub_init(&h, &a, 'A', 8);
    sub_init(&h, &b, 'B', 8);
    a.hook = refuse_first;
    b.hook = resume_other;
    b.other = &a;

    publish_i(&h, 1);
    /* B resumes A after A's turn, so the idle must stay on for a second pass. */
    ck_assert_int_eq(run_once(&h), 1);
    ck_assert_str_eq(call_log, "A1 B1 ");
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A1 B1 A1 ");
    ck_assert_uint_eq(a.sub.delivered, 1);
    harness_close(&h);
}
END_TEST

/* ---- unsubscribe from callbacks --------------------------------------- */

/* Unsubscribes and frees itself at seq 2; loop index 0 then takes the event,
 * 1 refuses it. Either way the bus must not touch the freed subscriber. */
static int self_unsub_ret;
static int unsubscribe_self(test_sub_t *ts, gd_event_t *ev)
{
    if (ev->seq != 2) return 0;
    gd_bus_unsubscribe(&ts->sub);
    memset(ts, 0xa5, sizeof(*ts));
    free(ts);
    return self_unsub_ret;
}

START_TEST(test_unsubscribe_self)
{
    harness_t h;
    test_sub_t b, c;
    harness_init(&h);
    self_unsub_ret = _i;
    test_sub_t *a = sub_new(&h, 'A', 8);
    a->hook = unsubscribe_self;
    sub_init(&h, &b, 'B', 8);
    sub_init(&h, &c, 'C', 8);

    for (int i = 1; i <= 3; i++)
        publish_i(&h, i);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A1 A2 B1 B2 B3 C1 C2 C3 ");
    /* A's queued seq 3 was dropped with it. */
    ck_assert_uint_eq(gd_event_live_count(), 0);

    call_log[0] = '\0';
    publish_i(&h, 4);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "B4 C4 ");
    harness_close(&h);
}
END_TEST

static int unsubscribe_other(test_sub_t *ts, gd_event_t *ev)
{
    if (ev->seq == 1 && ts->other) {
        gd_bus_unsubscribe(&ts->other->sub);
        free(ts->other);
        ts->other = NULL;
    }
    return 0;
}

START_TEST(test_unsubscribe_next)
{
    harness_t h;
    test_sub_t a, c;
    harness_init(&h);
    sub_init(&h, &a, 'A', 8);
    test_sub_t *b = sub_new(&h, 'B', 8);
    sub_init(&h, &c, 'C', 8);
    a.hook = unsubscribe_other;
    a.other = b;

    for (int i = 1; i <= 3; i++)
        publish_i(&h, i);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A1 A2 A3 C1 C2 C3 ");
    ck_assert_uint_eq(gd_event_live_count(), 0);
    harness_close(&h);
}
END_TEST

START_TEST(test_unsubscribe_earlier)
{
    harness_t h;
    test_sub_t b, c;
    harness_init(&h);
    test_sub_t *a = sub_new(&h, 'A', 8);
    sub_init(&h, &b, 'B', 8);
    sub_init(&h, &c, 'C', 8);
    c.hook = unsubscribe_other;
    c.other = a;

    publish_i(&h, 1);
    publish_i(&h, 2);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "A1 A2 B1 B2 C1 C2 ");

    call_log[0] = '\0';
    publish_i(&h, 3);
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "B3 C3 ");
    harness_close(&h);
}
END_TEST

START_TEST(test_unsubscribe_drops_queue)
{
    harness_t h;
    test_sub_t a;
    harness_init(&h);
    sub_init(&h, &a, 'A', 8);
    for (int i = 1; i <= 3; i++)
        publish_i(&h, i);
    ck_assert_uint_eq(gd_event_live_count(), 3);

    gd_bus_unsubscribe(&a.sub);
    ck_assert_uint_eq(gd_event_live_count(), 0);
    ck_assert_int_eq(a.sub.subscribed, 0);
    gd_bus_unsubscribe(&a.sub); /* twice is harmless */
    ck_assert_int_eq(run_once(&h), 0);
    ck_assert_str_eq(call_log, "");
    harness_close(&h);
}
END_TEST

/* ---- subscribe from callbacks ----------------------------------------- */

static test_sub_t late_sub;
static int subscribe_and_publish(test_sub_t *ts, gd_event_t *ev)
{
    if (ev->seq == 2) sub_init(ts->h, &late_sub, 'D', 8);
    if (ev->seq == 3) ck_assert_uint_eq(publish_i(ts->h, 4), 4);
    return 0;
}

START_TEST(test_subscribe_during_delivery)
{
    harness_t h;
    test_sub_t a, b;
    harness_init(&h);
    sub_init(&h, &a, 'A', 8);
    sub_init(&h, &b, 'B', 8);
    a.hook = subscribe_and_publish;

    for (int i = 1; i <= 3; i++)
        publish_i(&h, i);
    while (run_once(&h) != 0)
        ;
    /* D sees only what was published after it subscribed. */
    ck_assert_int_eq(late_sub.n, 1);
    ck_assert_uint_eq(late_sub.seen[0], 4);
    ck_assert_int_eq(a.n, 4);
    ck_assert_int_eq(b.n, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(a.seen[i], (uint64_t)i + 1);
        ck_assert_uint_eq(b.seen[i], (uint64_t)i + 1);
    }
    /* The event A published from its callback waits for the next pass. */
    ck_assert_str_eq(call_log, "A1 A2 A3 B1 B2 B3 B4 D4 A4 ");
    harness_close(&h);
}
END_TEST

START_TEST(test_subscribe_rejects_zero_capacity)
{
    harness_t h;
    gd_bus_sub_t sub;
    harness_init(&h);
    ck_assert_int_eq(gd_bus_subscribe(&h.bus, &sub, "z", 0, record, NULL), -EINVAL);
    ck_assert_ptr_null(h.bus.subs);
    harness_close(&h);
}
END_TEST

/* ---- reference counts and shutdown ------------------------------------ */

START_TEST(test_refs_shared_and_released)
{
    harness_t h;
    test_sub_t a, b, c;
    harness_init(&h);
    sub_init(&h, &a, 'A', 8);
    sub_init(&h, &b, 'B', 8);
    sub_init(&h, &c, 'C', 8);
    a.keep = 1;
    b.keep = 1;

    publish_i(&h, 1);
    ck_assert_uint_eq(gd_event_live_count(), 1);
    gd_event_t *ev = queue_head(&a);
    ck_assert_ptr_eq(queue_head(&b), ev);
    ck_assert_ptr_eq(queue_head(&c), ev);
    ck_assert_uint_eq(ev->refs, 3);

    for (int i = 2; i <= 5; i++)
        publish_i(&h, i);
    ck_assert_uint_eq(gd_event_live_count(), 5);
    ck_assert_int_eq(run_once(&h), 0);
    /* Only the references A and B took remain. */
    ck_assert_uint_eq(gd_event_live_count(), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(a.held[i]->refs, 2);
    drop_held(&a);
    ck_assert_uint_eq(gd_event_live_count(), 5);
    drop_held(&b);
    ck_assert_uint_eq(gd_event_live_count(), 0);
    harness_close(&h);
}
END_TEST

START_TEST(test_close_drops_queued)
{
    harness_t h;
    test_sub_t a, b;
    harness_init(&h);
    sub_init(&h, &a, 'A', 8);
    sub_init(&h, &b, 'B', 2);
    for (int i = 1; i <= 5; i++)
        publish_i(&h, i);
    ck_assert_uint_eq(gd_event_live_count(), 5);

    harness_close(&h); /* asserts uv_loop_close() == 0 and no live events */
    ck_assert_str_eq(call_log, "");
    ck_assert_int_eq(a.sub.subscribed, 0);
    gd_bus_unsubscribe(&a.sub); /* after close: harmless */
    ck_assert_uint_eq(gd_bus_publish(&h.bus, "late", NULL), 0);
    ck_assert_uint_eq(gd_event_live_count(), 0);
}
END_TEST

/* Closes the bus at seq 2 and refuses that event: the bus has already dropped
 * the queue it would go back to. */
static int close_bus(test_sub_t *ts, gd_event_t *ev)
{
    if (ev->seq != 2) return 0;
    gd_bus_close(&ts->h->bus, on_bus_closed);
    return 1;
}

START_TEST(test_close_from_callback)
{
    harness_t h;
    test_sub_t a, b;
    harness_init(&h);
    sub_init(&h, &a, 'A', 8);
    sub_init(&h, &b, 'B', 8);
    a.hook = close_bus;
    for (int i = 1; i <= 3; i++)
        publish_i(&h, i);
    ck_assert_int_eq(uv_run(&h.loop, UV_RUN_DEFAULT), 0);
    ck_assert_str_eq(call_log, "A1 A2 ");
    ck_assert_int_eq(h.closed, 1);
    harness_close(&h); /* a second close is a no-op */
}
END_TEST

static Suite *bus_suite(void)
{
    Suite *s = suite_create("bus");

    TCase *tc = tcase_create("fanout");
    tcase_add_test(tc, test_fanout_order);
    tcase_add_test(tc, test_same_bytes_for_everyone);
    tcase_add_test(tc, test_event_lines);
    tcase_add_test(tc, test_seq_and_clock);
    suite_add_tcase(s, tc);

    tc = tcase_create("lag");
    tcase_add_test(tc, test_lag_full_queue);
    tcase_add_test(tc, test_lag_while_paused);
    suite_add_tcase(s, tc);

    tc = tcase_create("pause");
    tcase_add_test(tc, test_refuse_pause_resume);
    tcase_add_test(tc, test_resume_from_callback);
    suite_add_tcase(s, tc);

    tc = tcase_create("unsubscribe");
    tcase_add_loop_test(tc, test_unsubscribe_self, 0, 2);
    tcase_add_test(tc, test_unsubscribe_next);
    tcase_add_test(tc, test_unsubscribe_earlier);
    tcase_add_test(tc, test_unsubscribe_drops_queue);
    suite_add_tcase(s, tc);

    tc = tcase_create("subscribe");
    tcase_add_test(tc, test_subscribe_during_delivery);
    tcase_add_test(tc, test_subscribe_rejects_zero_capacity);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_test(tc, test_refs_shared_and_released);
    tcase_add_test(tc, test_close_drops_queued);
    tcase_add_test(tc, test_close_from_callback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bus_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
