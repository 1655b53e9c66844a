/* hooks: the durable outbox and the webhook sender, exercised with real libcurl POSTs
 * against a tiny HTTP receiver on 127.0.0.1 that answers whatever status a test chooses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capstan/error.h"
#include "hooks/outbox.h"
#include "hooks/webhook.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 5000

/* ---- a one-connection-at-a-time HTTP receiver ---- */

#define MAX_REQUESTS 64

struct received {
    char event_id[CAP_OUTBOX_MAX_EVENT_ID + 1];
    char signature[128];
    char user_agent[64];
    char content_type[64];
    char body[512];
    size_t body_len;
    int status; /* what we answered */
    int64_t at_ms;
};

struct receiver {
    int listen_fd;
    char url[64];
    pthread_t thread;
    atomic_bool stopping;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int fail_first; /* answer 500 to this many requests, then 200 */
    struct received requests[MAX_REQUESTS];
    size_t count;
    size_t acknowledged; /* requests answered 2xx */
};

static int64_t mono_ms(void)
{
    return cap_clock_mono_ns() / CAP_NS_PER_MS;
}

static int listen_on_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof(addr);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* Copies the value of header name from the request head into out ("" if absent). */
static void header_value(const char *head, const char *name, char *out, size_t out_size)
{
    out[0] = '\0';
    size_t name_len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *value = line + name_len + 1;
            while (*value == ' ')
                value++;
            size_t n = strcspn(value, "\r\n");
            if (n >= out_size)
                n = out_size - 1;
            memcpy(out, value, n);
            out[n] = '\0';
            return;
        }
    }
}

/* Reads until the head and Content-Length body are in; returns the total length or -1. */
static ssize_t read_request(int fd, char *buf, size_t cap, size_t *head_len)
{
    size_t len = 0;
    int64_t deadline = mono_ms() + 2000;
    while (len < cap - 1 && mono_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        *head_len = (size_t)(end - buf) + 4;
        char length_text[32];
        buf[*head_len - 2] = '\0'; /* header_value stops at the head */
        header_value(buf, "Content-Length", length_text, sizeof(length_text));
        buf[*head_len - 2] = '\r';
        size_t body_len = (size_t)strtoul(length_text, NULL, 10);
        if (len >= *head_len + body_len)
            return (ssize_t)len;
    }
    return -1;
}

static void serve_one(struct receiver *r, int fd)
{
    char buf[8192];
    size_t head_len = 0;
    ssize_t total = read_request(fd, buf, sizeof(buf), &head_len);
    if (total < 0)
        return;
    struct received rec = {.at_ms = mono_ms()};
    char saved = buf[head_len];
    buf[head_len] = '\0';
    header_value(buf, "X-Capstan-Event-Id", rec.event_id, sizeof(rec.event_id));
    header_value(buf, "X-Capstan-Signature", rec.signature, sizeof(rec.signature));
    header_value(buf, "User-Agent", rec.user_agent, sizeof(rec.user_agent));
    header_value(buf, "Content-Type", rec.content_type, sizeof(rec.content_type));
    buf[head_len] = saved;
    rec.body_len = (size_t)total - head_len;
    if (rec.body_len >= sizeof(rec.body))
        rec.body_len = sizeof(rec.body) - 1;
    memcpy(rec.body, buf + head_len, rec.body_len);

    pthread_mutex_lock(&r->lock);
    rec.status = (int)r->count < r->fail_first ? 500 : 200;
    if (r->count < MAX_REQUESTS)
        r->requests[r->count++] = rec;
    if (rec.status == 200)
        r->acknowledged++;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);

    char answer[128];
    int n = snprintf(answer, sizeof(answer),
                     "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", rec.status,
                     rec.status == 200 ? "OK" : "Internal Server Error");
    ssize_t written = write(fd, answer, (size_t)n);
    (void)written;
}

static void *receiver_main(void *arg)
{
    struct receiver *r = arg;
    while (!atomic_load(&r->stopping)) {
        struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(r, fd);
        close(fd);
    }
    return NULL;
}

static struct receiver *receiver_start(int fail_first)
{
    struct receiver *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    int port = 0;
    r->listen_fd = listen_on_loopback(&port);
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d/hooks", port);
    r->fail_first = fail_first;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
    assert_int_equal(pthread_create(&r->thread, NULL, receiver_main, r), 0);
    return r;
}

static void receiver_stop(struct receiver *r)
{
    atomic_store(&r->stopping, true);
    pthread_join(r->thread, NULL);
    close(r->listen_fd);
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Waits until the receiver has seen `requests` requests and acknowledged `acks`. */
static bool receiver_wait(struct receiver *r, size_t requests, size_t acks)
{
    int64_t deadline = mono_ms() + WAIT_MS;
    pthread_mutex_lock(&r->lock);
    while ((r->count < requests || r->acknowledged < acks) && mono_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->changed, &r->lock, &ts);
    }
    bool reached = r->count >= requests && r->acknowledged >= acks;
    pthread_mutex_unlock(&r->lock);
    return reached;
}

/* A URL on which nothing listens: connections are refused. */
static void refused_url(char *out, size_t out_size)
{
    int port = 0;
    int fd = listen_on_loopback(&port);
    close(fd);
    snprintf(out, out_size, "http://127.0.0.1:%d/hooks", port);
}

/* ---- fixture: a fresh directory for the outbox database ---- */

struct fixture {
    char dir[64];
    char db_path[128];
};

static int make_fixture(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/capstan-hooks-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db_path, sizeof(f->db_path), "%s/outbox.db", f->dir);
    *state = f;
    return 0;
}

static int remove_fixture(void **state)
{
    struct fixture *f = *state;
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    char path[160];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s%s", f->db_path, suffixes[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct cap_outbox *open_outbox(const struct fixture *f, const char *const *urls,
                                      size_t count)
{
    struct cap_outbox *ob = NULL;
    assert_int_equal(cap_outbox_open(&ob, f->db_path), 0);
    assert_int_equal(cap_outbox_set_endpoints(ob, urls, count), 0);
    return ob;
}

static void enqueue_numbered(struct cap_outbox *ob, int first, int last)
{
    for (int i = first; i <= last; i++) {
        char id[32], body[160];
        snprintf(id, sizeof(id), "evt_%d", i);
        int n = snprintf(body, sizeof(body),
                         "{\"id\":\"%s\",\"node\":1,\"ts\":1731132577151,"
                         "\"event\":{\"Record\":{\"seq\":%d}}}",
                         id, i);
        assert_int_equal(cap_outbox_enqueue(ob, id, body, (size_t)n), 0);
    }
}

static struct cap_webhook_sender *start_sender(struct cap_outbox *ob, const char *const *urls,
                                               size_t count, const char *secret,
                                               int64_t initial_backoff_ms)
{
    struct cap_webhook_config cfg = {
        .urls = urls,
        .url_count = count,
        .secret = secret,
        .initial_backoff_ms = initial_backoff_ms,
        .max_backoff_ms = 10000,
        .timeout_ms = 5000,
    };
    struct cap_webhook_sender *s = NULL;
    assert_int_equal(cap_webhook_sender_start(&s, ob, &cfg), 0);
    cap_webhook_sender_wake(s);
    return s;
}

/* The receiver may have answered before the sender recorded the answer: wait for that. */
static bool backlog_reaches(struct cap_outbox *ob, int64_t expected)
{
    int64_t deadline = mono_ms() + WAIT_MS;
    while (cap_outbox_backlog(ob) != expected && mono_ms() < deadline)
        usleep(2000);
    return cap_outbox_backlog(ob) == expected;
}

/* Reads attempts and last_error of one delivery straight from the database. */
static int64_t stored_attempts(const struct fixture *f, const char *event_id, char *last_error,
                               size_t last_error_size)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT d.attempts, d.last_error FROM deliveries d"
                                        " JOIN events e ON e.seq = d.event_seq WHERE e.id = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t attempts = sqlite3_column_int64(st, 0);
    const char *error = (const char *)sqlite3_column_text(st, 1);
    if (last_error)
        snprintf(last_error, last_error_size, "%s", error ? error : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return attempts;
}

/* ---- signing and backoff ---- */

static void test_signature_matches_rfc4231_test_case_2(void **state)
{
    (void)state;
    const char *data = "what do ya want for nothing?";
    char signature[CAP_WEBHOOK_SIGNATURE_SIZE];
    cap_webhook_sign("Jefe", (const uint8_t *)data, strlen(data), signature, sizeof(signature));
    assert_string_equal(signature,
                        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_signature_is_empty_without_secret_or_room(void **state)
{
    (void)state;
    char signature[CAP_WEBHOOK_SIGNATURE_SIZE] = "x";
    cap_webhook_sign(NULL, (const uint8_t *)"{}", 2, signature, sizeof(signature));
    assert_string_equal(signature, "");
    strcpy(signature, "x");
    cap_webhook_sign("", (const uint8_t *)"{}", 2, signature, sizeof(signature));
    assert_string_equal(signature, "");
    strcpy(signature, "x");
    cap_webhook_sign("Jefe", (const uint8_t *)"{}", 2, signature, sizeof(signature) - 1);
    assert_string_equal(signature, "");
}

static void test_backoff_doubles_from_initial_and_stops_at_max(void **state)
{
    (void)state;
    static const struct {
        int64_t failed_attempts, expected_ms;
    } cases[] = {
        {1, 20},  {2, 40},   {3, 80},   {4, 160},        {5, 320},
        {6, 640}, {7, 1000}, {8, 1000}, {1000000, 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t exact = cap_webhook_backoff_ms(20, 1000, cases[i].failed_attempts, 0);
        assert_int_equal(exact, cases[i].expected_ms);
        /* Jitter only ever shortens, and by at most a tenth. */
        for (uint32_t random = 1; random < 50; random += 7) {
            int64_t jittered =
                cap_webhook_backoff_ms(20, 1000, cases[i].failed_attempts, random * 2654435761u);
            assert_true(jittered <= cases[i].expected_ms);
            assert_true(jittered >= cases[i].expected_ms - cases[i].expected_ms / 10);
        }
    }
}

/* ---- the outbox on its own ---- */

static void test_enqueue_creates_one_delivery_per_endpoint_set_at_that_moment(void **state)
{
    struct fixture *f = *state;
    const char *one[] = {"http://127.0.0.1:1/a"};
    const char *two[] = {"http://127.0.0.1:1/a", "http://127.0.0.1:1/b", "http://127.0.0.1:1/a"};
    struct cap_outbox *ob = open_outbox(f, one, 1);
    assert_int_equal(cap_outbox_enqueue(ob, "evt_1", "{}", 2), 0);
    assert_int_equal(cap_outbox_backlog(ob), 1);
    assert_int_equal(cap_outbox_set_endpoints(ob, two, 3), 0); /* the repeat is kept once */
    assert_int_equal(cap_outbox_enqueue(ob, "evt_2", "{}", 2), 0);
    assert_int_equal(cap_outbox_backlog(ob), 3);
    assert_int_equal(cap_outbox_set_endpoints(ob, NULL, 0), 0);
    assert_int_equal(cap_outbox_enqueue(ob, "evt_3", "{}", 2), 0);
    assert_int_equal(cap_outbox_backlog(ob), 3);
    cap_outbox_close(ob);
}

static void test_duplicate_event_id_is_refused_and_changes_nothing(void **state)
{
    struct fixture *f = *state;
    const char *urls[] = {"http://127.0.0.1:1/a"};
    struct cap_outbox *ob = open_outbox(f, urls, 1);
    assert_int_equal(cap_outbox_enqueue(ob, "evt_1", "{\"a\":1}", 7), 0);
    assert_int_equal(cap_outbox_enqueue(ob, "evt_1", "{\"a\":1}", 7), CAP_EEXIST);
    assert_int_equal(cap_outbox_enqueue(ob, "evt_1", "{\"b\":2}", 7), CAP_EEXIST);
    assert_int_equal(cap_outbox_backlog(ob), 1);
    struct cap_outbox_delivery d;
    assert_int_equal(cap_outbox_next_pending(ob, urls[0], &d), 1);
    assert_string_equal(d.event_id, "evt_1");
    assert_memory_equal(d.body, "{\"a\":1}", 7);
    cap_outbox_delivery_deinit(&d);
    cap_outbox_close(ob);
}

static void test_outbox_refuses_ids_and_urls_that_cannot_travel_in_http(void **state)
{
    struct fixture *f = *state;
    struct cap_outbox *ob = open_outbox(f, NULL, 0);
    assert_int_equal(cap_outbox_enqueue(ob, "", "{}", 2), CAP_EINVAL);
    assert_int_equal(cap_outbox_enqueue(ob, "evt_1\r\nX-Evil: 1", "{}", 2), CAP_EINVAL);
    assert_int_equal(cap_outbox_enqueue(ob, "evt 1", "{}", 2), CAP_EINVAL);
    assert_int_equal(cap_outbox_enqueue(ob, NULL, "{}", 2), CAP_EINVAL);
    assert_int_equal(cap_outbox_enqueue(ob, "evt_1", NULL, 2), CAP_EINVAL);
    char *huge = calloc(1, CAP_OUTBOX_MAX_BODY + 1);
    assert_non_null(huge);
    assert_int_equal(cap_outbox_enqueue(ob, "evt_1", huge, CAP_OUTBOX_MAX_BODY + 1), CAP_ELIMIT);
    free(huge);
    const char *ftp[] = {"ftp://127.0.0.1/x"};
    const char *spaced[] = {"http://127.0.0.1/a b"};
    assert_int_equal(cap_outbox_set_endpoints(ob, ftp, 1), CAP_EINVAL);
    assert_int_equal(cap_outbox_set_endpoints(ob, spaced, 1), CAP_EINVAL);
    assert_int_equal(cap_outbox_backlog(ob), 0);
    cap_outbox_close(ob);
}

static void test_prune_drops_old_delivered_rows_and_keeps_pending_ones(void **state)
{
    struct fixture *f = *state;
    const char *urls[] = {"http://127.0.0.1:1/a"};
    struct cap_outbox *ob = open_outbox(f, urls, 1);
    enqueue_numbered(ob, 1, 2);
    struct cap_outbox_delivery d;
    assert_int_equal(cap_outbox_next_pending(ob, urls[0], &d), 1);
    assert_string_equal(d.event_id, "evt_1");
    int64_t now = cap_clock_wall_ns() / CAP_NS_PER_MS;
    assert_int_equal(cap_outbox_mark_delivered(ob, d.event_seq, urls[0], now), 0);
    cap_outbox_delivery_deinit(&d);

    assert_int_equal(cap_outbox_prune(ob, now - 1, 100), 0); /* delivered, but not old yet */
    assert_int_equal(cap_outbox_prune(ob, now + 1, 100), 2); /* the delivery and its event */
    assert_int_equal(cap_outbox_prune(ob, now + 1, 100), 0);
    assert_int_equal(cap_outbox_backlog(ob), 1);
    assert_int_equal(cap_outbox_next_pending(ob, urls[0], &d), 1);
    assert_string_equal(d.event_id, "evt_2");
    cap_outbox_delivery_deinit(&d);
    cap_outbox_close(ob);
}

/* ---- the sender against a real receiver ---- */

static void test_enqueued_events_survive_close_and_are_delivered_after_restart(void **state)
{
    struct fixture *f = *state;
    struct receiver *r = receiver_start(0);
    const char *urls[] = {r->url};
    struct cap_outbox *ob = open_outbox(f, urls, 1);
    enqueue_numbered(ob, 1, 3);
    assert_int_equal(cap_outbox_backlog(ob), 3);
    cap_outbox_close(ob);

    ob = open_outbox(f, urls, 1);
    assert_int_equal(cap_outbox_backlog(ob), 3);
    struct cap_webhook_sender *s = start_sender(ob, urls, 1, "s3cret", 20);
    assert_true(receiver_wait(r, 3, 3));
    assert_true(backlog_reaches(ob, 0));
    assert_int_equal(cap_webhook_sender_stop(s), 0);
    assert_string_equal(r->requests[0].event_id, "evt_1");
    assert_string_equal(r->requests[2].event_id, "evt_3");
    cap_outbox_close(ob);
    receiver_stop(r);
}

static void test_receiver_failing_three_times_still_gets_every_event_once_in_order(void **state)
{
    struct fixture *f = *state;
    const char *secret = "s3cret";
    struct receiver *r = receiver_start(3);
    const char *urls[] = {r->url};
    struct cap_outbox *ob = open_outbox(f, urls, 1);
    enqueue_numbered(ob, 1, 5);
    struct cap_webhook_sender *s = start_sender(ob, urls, 1, secret, 20);
    assert_true(receiver_wait(r, 8, 5));
    assert_true(backlog_reaches(ob, 0));
    struct cap_webhook_stats stats;
    cap_webhook_sender_stats(s, &stats);
    assert_int_equal(cap_webhook_sender_stop(s), 0);

    assert_int_equal(r->count, 8);
    assert_int_equal(stats.failed_attempts, 3);
    assert_int_equal(stats.delivered, 5);
    int next_acknowledged = 1;
    for (size_t i = 0; i < r->count; i++) {
        const struct received *rec = &r->requests[i];
        char expected_id[32], signature[CAP_WEBHOOK_SIGNATURE_SIZE];
        if (i < 3) { /* no skipping ahead past the failing first event */
            assert_int_equal(rec->status, 500);
            assert_string_equal(rec->event_id, "evt_1");
        } else {
            assert_int_equal(rec->status, 200);
            snprintf(expected_id, sizeof(expected_id), "evt_%d", next_acknowledged++);
            assert_string_equal(rec->event_id, expected_id);
        }
        char quoted_id[CAP_OUTBOX_MAX_EVENT_ID + 16];
        snprintf(quoted_id, sizeof(quoted_id), "\"id\":\"%s\"", rec->event_id);
        assert_non_null(strstr(rec->body, quoted_id));
        cap_webhook_sign(secret, (const uint8_t *)rec->body, rec->body_len, signature,
                         sizeof(signature));
        assert_string_equal(rec->signature, signature);
        assert_string_equal(rec->user_agent, "capstan/0.1");
        assert_string_equal(rec->content_type, "application/json");
    }
    assert_int_equal(next_acknowledged, 6);
    cap_outbox_close(ob);
    receiver_stop(r);
}

static void test_endpoint_refusing_connections_does_not_delay_the_other(void **state)
{
    struct fixture *f = *state;
    struct receiver *r = receiver_start(0);
    char down[64];
    refused_url(down, sizeof(down));
    const char *urls[] = {down, r->url};
    struct cap_outbox *ob = open_outbox(f, urls, 2);
    enqueue_numbered(ob, 1, 5);
    /* A long backoff: had the dead endpoint held up the live one, the wait would time out. */
    struct cap_webhook_sender *s = start_sender(ob, urls, 2, NULL, 10000);
    assert_true(receiver_wait(r, 5, 5));
    assert_true(backlog_reaches(ob, 5)); /* everything still owed to the dead one */
    struct cap_webhook_stats stats;
    int64_t deadline = mono_ms() + WAIT_MS;
    cap_webhook_sender_stats(s, &stats);
    while (stats.failed_attempts == 0 && mono_ms() < deadline) {
        usleep(2000);
        cap_webhook_sender_stats(s, &stats);
    }
    assert_int_equal(cap_webhook_sender_stop(s), 0);
    assert_true(stats.failed_attempts >= 1);
    assert_int_equal(stats.delivered, 5);
    for (size_t i = 0; i < 5; i++) {
        char expected_id[32];
        snprintf(expected_id, sizeof(expected_id), "evt_%zu", i + 1);
        assert_string_equal(r->requests[i].event_id, expected_id);
        assert_string_equal(r->requests[i].signature, ""); /* no secret: unsigned */
    }
    cap_outbox_close(ob);
    receiver_stop(r);
}

static void test_hung_endpoint_does_not_delay_the_other(void **state)
{
    struct fixture *f = *state;
    struct receiver *r = receiver_start(0);
    int port = 0;
    int hung_fd = listen_on_loopback(&port); /* accepts connections, never answers */
    char hung[64];
    snprintf(hung, sizeof(hung), "http://127.0.0.1:%d/hooks", port);
    const char *urls[] = {hung, r->url};
    struct cap_outbox *ob = open_outbox(f, urls, 2);
    enqueue_numbered(ob, 1, 5);
    struct cap_webhook_sender *s = start_sender(ob, urls, 2, NULL, 20);
    assert_true(receiver_wait(r, 5, 5));
    assert_true(backlog_reaches(ob, 5));
    assert_int_equal(cap_webhook_sender_stop(s), 0);
    cap_outbox_close(ob);
    close(hung_fd);
    receiver_stop(r);
}

static void test_retries_of_a_failing_event_are_spaced_further_apart_each_time(void **state)
{
    struct fixture *f = *state;
    struct receiver *r = receiver_start(INT_MAX);
    const char *urls[] = {r->url};
    struct cap_outbox *ob = open_outbox(f, urls, 1);
    enqueue_numbered(ob, 1, 2);
    struct cap_webhook_sender *s = start_sender(ob, urls, 1, NULL, 20);
    assert_true(receiver_wait(r, 5, 0));
    assert_int_equal(cap_webhook_sender_stop(s), 0);

    int64_t gaps[4];
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(r->requests[i + 1].event_id, "evt_1");
        gaps[i] = r->requests[i + 1].at_ms - r->requests[i].at_ms;
        /* Never sooner than scheduled: 20, 40, 80, 160 ms less a tenth of jitter. */
        int64_t nominal = INT64_C(20) << i;
        assert_true(gaps[i] >= nominal - nominal / 10 - 2);
    }
    assert_true(gaps[3] > gaps[0]);
    char last_error[64];
    int64_t attempts = stored_attempts(f, "evt_1", last_error, sizeof(last_error));
    assert_true(attempts >= 4 && attempts <= (int64_t)r->count);
    assert_string_equal(last_error, "HTTP status 500");
    assert_int_equal(cap_outbox_backlog(ob), 2);
    cap_outbox_close(ob);
    receiver_stop(r);
}

static void test_stop_during_backoff_is_prompt_and_leaves_rows_pending(void **state)
{
    struct fixture *f = *state;
    struct receiver *r = receiver_start(INT_MAX);
    const char *urls[] = {r->url};
    struct cap_outbox *ob = open_outbox(f, urls, 1);
    enqueue_numbered(ob, 1, 2);
    struct cap_webhook_sender *s = start_sender(ob, urls, 1, NULL, 10000);
    assert_true(receiver_wait(r, 1, 0));
    /* Wait for the failure to be recorded, so the sender is sleeping through its backoff. */
    int64_t deadline = mono_ms() + WAIT_MS;
    while (stored_attempts(f, "evt_1", NULL, 0) < 1 && mono_ms() < deadline)
        usleep(5000);
    int64_t started = mono_ms();
    assert_int_equal(cap_webhook_sender_stop(s), 0);
    assert_true(mono_ms() - started < 1000);
    assert_int_equal(r->count, 1); /* evt_2 waits behind the failing evt_1 */
    assert_int_equal(stored_attempts(f, "evt_1", NULL, 0), 1);
    assert_int_equal(cap_outbox_backlog(ob), 2);
    cap_outbox_close(ob);
    receiver_stop(r);
}

static void test_stop_during_a_hung_request_is_prompt_and_counts_no_attempt(void **state)
{
    struct fixture *f = *state;
    int port = 0;
    int hung_fd = listen_on_loopback(&port);
    char hung[64];
    snprintf(hung, sizeof(hung), "http://127.0.0.1:%d/hooks", port);
    const char *urls[] = {hung};
    struct cap_outbox *ob = open_outbox(f, urls, 1);
    enqueue_numbered(ob, 1, 1);
    struct cap_webhook_sender *s = start_sender(ob, urls, 1, NULL, 20);
    /* A connection waiting in the listen queue means the request is in flight. */
    struct pollfd p = {.fd = hung_fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    int64_t started = mono_ms();
    assert_int_equal(cap_webhook_sender_stop(s), 0);
    assert_true(mono_ms() - started < 1000);
    assert_int_equal(cap_outbox_backlog(ob), 1);
    assert_int_equal(stored_attempts(f, "evt_1", NULL, 0), 0);
    cap_outbox_close(ob);
    close(hung_fd);
}

static void test_wake_sends_an_event_enqueued_while_idle_at_once(void **state)
{
    struct fixture *f = *state;
    struct receiver *r = receiver_start(0);
    const char *urls[] = {r->url};
    struct cap_outbox *ob = open_outbox(f, urls, 1);
    struct cap_webhook_sender *s = start_sender(ob, urls, 1, NULL, 20);
    usleep(50 * 1000); /* let it find nothing and settle into its long idle wait */
    enqueue_numbered(ob, 1, 1);
    cap_webhook_sender_wake(s);
    assert_true(receiver_wait(r, 1, 1));
    assert_true(backlog_reaches(ob, 0));
    assert_int_equal(cap_webhook_sender_stop(s), 0);
    cap_outbox_close(ob);
    receiver_stop(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_matches_rfc4231_test_case_2),
        cmocka_unit_test(test_signature_is_empty_without_secret_or_room),
        cmocka_unit_test(test_backoff_doubles_from_initial_and_stops_at_max),
#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, make_fixture, remove_fixture)
        FIXTURE_TEST(test_enqueue_creates_one_delivery_per_endpoint_set_at_that_moment),
        FIXTURE_TEST(test_duplicate_event_id_is_refused_and_changes_nothing),
        FIXTURE_TEST(test_outbox_refuses_ids_and_urls_that_cannot_travel_in_http),
        FIXTURE_TEST(test_prune_drops_old_delivered_rows_and_keeps_pending_ones),
        FIXTURE_TEST(test_enqueued_events_survive_close_and_are_delivered_after_restart),
        FIXTURE_TEST(test_receiver_failing_three_times_still_gets_every_event_once_in_order),
        FIXTURE_TEST(test_endpoint_refusing_connections_does_not_delay_the_other),
        FIXTURE_TEST(test_hung_endpoint_does_not_delay_the_other),
        FIXTURE_TEST(test_retries_of_a_failing_event_are_spaced_further_apart_each_time),
        FIXTURE_TEST(test_stop_during_backoff_is_prompt_and_leaves_rows_pending),
        FIXTURE_TEST(test_stop_during_a_hung_request_is_prompt_and_counts_no_attempt),
        FIXTURE_TEST(test_wake_sends_an_event_enqueued_while_idle_at_once),
#undef FIXTURE_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
