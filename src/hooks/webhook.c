/* The webhook sender (webhook.h): one thread drives a libcurl multi handle with one easy
 * handle per endpoint, so each endpoint has at most one request in flight (its oldest
 * pending event) and a slow or dead endpoint never delays the others. */
#include "hooks/webhook.h"

#include "capstan/error.h"
#include "util/clock.h"
#include "util/log.h"

#include <curl/curl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_AGENT "capstan/0.1"
/* A pass runs at least this often even without a wake, in case another process enqueued. */
#define IDLE_RECHECK_MS 30000
#define DB_ERROR_RETRY_MS 1000
#define PRUNE_INTERVAL_MS 60000
#define PRUNE_AGE_MS (INT64_C(24) * 3600 * 1000)
#define PRUNE_BATCH 500
/* A scheduled retry further away than the longest backoff means the wall clock stepped
 * back; such a delivery is treated as due rather than parked for the size of the step. */
#define CLOCK_STEP_SLACK_MS 1000

struct endpoint {
    char *url;
    char *log_url; /* url without user:password@, for log lines */
    CURL *easy;
    struct curl_slist *headers;
    struct cap_outbox_delivery current; /* the request in flight, while busy */
    bool busy;
    /* Earliest next attempt, kept in memory too so a failure the outbox could not record
     * does not turn into a tight retry loop. */
    int64_t not_before_ms;
    char error[CURL_ERROR_SIZE];
};

struct cap_webhook_sender {
    struct cap_outbox *ob;
    char *secret; /* NULL: unsigned */
    int64_t initial_backoff_ms;
    int64_t max_backoff_ms;
    long timeout_ms;
    struct endpoint *endpoints;
    size_t endpoint_count;
    CURLM *multi;
    pthread_t thread;
    atomic_bool stopping;
    atomic_bool wake_requested;
    atomic_uint_fast64_t delivered;
    atomic_uint_fast64_t failed_attempts;
    uint64_t random_state; /* sender thread only */
    int64_t next_prune_ms; /* sender thread only */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void init_curl(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t wall_ms(void)
{
    return cap_clock_wall_ns() / CAP_NS_PER_MS;
}

static int64_t mono_ms(void)
{
    return cap_clock_mono_ns() / CAP_NS_PER_MS;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* splitmix64: jitter only needs to differ between capstans, not to be unpredictable. */
static uint32_t next_random(struct cap_webhook_sender *s)
{
    uint64_t z = (s->random_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

void cap_webhook_sign(const char *secret, const uint8_t *body, size_t len, char *out,
                      size_t out_size)
{
    static const char hex[] = "0123456789abcdef";
    static const uint8_t empty_body[1];
    if (!out || out_size == 0)
        return;
    out[0] = '\0';
    if (!secret || !*secret || out_size < CAP_WEBHOOK_SIGNATURE_SIZE || (len > 0 && !body))
        return;
    size_t key_len = strlen(secret);
    if (key_len > INT_MAX)
        return;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)key_len, len ? body : empty_body, len, mac, &mac_len) ||
        mac_len != 32)
        return;
    memcpy(out, "sha256=", 7);
    for (unsigned int i = 0; i < mac_len; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[8 + 2 * i] = hex[mac[i] & 0x0f];
    }
    out[7 + 2 * mac_len] = '\0';
}

int64_t cap_webhook_backoff_ms(int64_t initial_ms, int64_t max_ms, int64_t failed_attempts,
                               uint32_t random)
{
    if (initial_ms <= 0)
        initial_ms = 1;
    if (max_ms < initial_ms)
        max_ms = initial_ms;
    int64_t delay = initial_ms;
    for (int64_t i = 1; i < failed_attempts && delay < max_ms; i++)
        delay = delay > max_ms / 2 ? max_ms : delay * 2;
    int64_t jitter_span = delay / 10;
    if (jitter_span > 0)
        delay -= (int64_t)(random % (uint64_t)(jitter_span + 1));
    return delay;
}

/* A copy of url with any user:password@ removed, so credentials never reach the log. */
static char *redacted_url(const char *url)
{
    char *copy = strdup(url);
    if (!copy)
        return NULL;
    char *scheme_end = strstr(copy, "://");
    if (!scheme_end)
        return copy;
    char *authority = scheme_end + 3;
    size_t authority_len = strcspn(authority, "/?#");
    char *at = memrchr(authority, '@', authority_len);
    if (at)
        memmove(authority, at + 1, strlen(at + 1) + 1);
    return copy;
}

static size_t discard_response(char *data, size_t size, size_t count, void *userdata)
{
    (void)data;
    (void)userdata;
    return size * count;
}

/* Options that stay the same for every request to this endpoint. */
static CURLcode configure_easy(struct cap_webhook_sender *s, struct endpoint *ep)
{
    CURL *e = ep->easy;
    CURLcode rc = curl_easy_setopt(e, CURLOPT_URL, ep->url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_POST, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->timeout_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_response);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ep->error);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)ep);
#if LIBCURL_VERSION_NUM >= 0x075500
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
#if LIBCURL_VERSION_NUM >= 0x075700
    /* Stop must not wait for a DNS lookup that hangs. */
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    return rc;
}

static int endpoint_init(struct cap_webhook_sender *s, struct endpoint *ep, const char *url)
{
    ep->url = strdup(url);
    ep->log_url = redacted_url(url);
    ep->easy = curl_easy_init();
    if (!ep->url || !ep->log_url || !ep->easy)
        return CAP_ENOMEM;
    CURLcode rc = configure_easy(s, ep);
    if (rc != CURLE_OK) {
        CAP_ERROR(NULL, "webhook %s: cannot configure libcurl: %s", ep->log_url,
                  curl_easy_strerror(rc));
        return CAP_EIO;
    }
    return 0;
}

static void endpoint_abort(struct cap_webhook_sender *s, struct endpoint *ep)
{
    if (ep->busy)
        curl_multi_remove_handle(s->multi, ep->easy);
    ep->busy = false;
    curl_slist_free_all(ep->headers);
    ep->headers = NULL;
    cap_outbox_delivery_deinit(&ep->current);
}

static void sender_free(struct cap_webhook_sender *s)
{
    for (size_t i = 0; i < s->endpoint_count; i++) {
        struct endpoint *ep = &s->endpoints[i];
        endpoint_abort(s, ep);
        if (ep->easy)
            curl_easy_cleanup(ep->easy);
        free(ep->url);
        free(ep->log_url);
    }
    free(s->endpoints);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    free(s->secret);
    free(s);
}

/* Counts a failed attempt, schedules the retry and says why in the log. */
static void record_failure(struct cap_webhook_sender *s, struct endpoint *ep, const char *reason,
                           int64_t now)
{
    struct cap_outbox_delivery *d = &ep->current;
    int64_t attempts = d->attempts + 1;
    int64_t delay =
        cap_webhook_backoff_ms(s->initial_backoff_ms, s->max_backoff_ms, attempts, next_random(s));
    atomic_fetch_add(&s->failed_attempts, 1);
    CAP_WARN(NULL, "webhook %s: event %s attempt %lld failed: %s; next attempt in %lld ms",
             ep->log_url, d->event_id, (long long)attempts, reason, (long long)delay);
    ep->not_before_ms = now + delay;
    /* On failure the outbox has logged it; the in-memory hold still spaces the retries. */
    cap_outbox_mark_failed(s->ob, d->event_seq, ep->url, now + delay, reason);
}

static struct curl_slist *append_header(struct curl_slist *list, const char *header, bool *ok)
{
    struct curl_slist *longer = *ok ? curl_slist_append(list, header) : NULL;
    if (!longer) {
        *ok = false;
        return list;
    }
    return longer;
}

/* Sends ep->current; the body and headers must live until the transfer is finished. */
static int start_request(struct cap_webhook_sender *s, struct endpoint *ep)
{
    struct cap_outbox_delivery *d = &ep->current;
    char id_header[32 + CAP_OUTBOX_MAX_EVENT_ID];
    char signature_header[32 + CAP_WEBHOOK_SIGNATURE_SIZE];
    snprintf(id_header, sizeof(id_header), "X-Capstan-Event-Id: %s", d->event_id);

    bool ok = true;
    struct curl_slist *list = append_header(NULL, "Content-Type: application/json", &ok);
    list = append_header(list, id_header, &ok);
    if (s->secret) {
        char signature[CAP_WEBHOOK_SIGNATURE_SIZE];
        cap_webhook_sign(s->secret, d->body, d->body_len, signature, sizeof(signature));
        snprintf(signature_header, sizeof(signature_header), "X-Capstan-Signature: %s", signature);
        list = append_header(list, signature_header, &ok);
    }
    /* No "Expect: 100-continue" round trip: bodies are small and receivers simple. */
    list = append_header(list, "Expect:", &ok);
    if (!ok) {
        curl_slist_free_all(list);
        return CAP_ENOMEM;
    }
    ep->headers = list;
    ep->error[0] = '\0';
    CURLcode rc = curl_easy_setopt(ep->easy, CURLOPT_HTTPHEADER, list);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->body_len);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDS, (const char *)d->body);
    if (rc != CURLE_OK || curl_multi_add_handle(s->multi, ep->easy) != CURLM_OK) {
        curl_slist_free_all(ep->headers);
        ep->headers = NULL;
        return CAP_EIO;
    }
    ep->busy = true;
    return 0;
}

static void finish_request(struct cap_webhook_sender *s, struct endpoint *ep, CURLcode result)
{
    long status = 0;
    curl_easy_getinfo(ep->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(s->multi, ep->easy);
    ep->busy = false;
    curl_slist_free_all(ep->headers);
    ep->headers = NULL;

    struct cap_outbox_delivery *d = &ep->current;
    int64_t now = wall_ms();
    if (result == CURLE_OK && status >= 200 && status < 300) {
        atomic_fetch_add(&s->delivered, 1);
        ep->not_before_ms = 0;
        if (cap_outbox_mark_delivered(s->ob, d->event_seq, ep->url, now) < 0) {
            CAP_ERROR(NULL,
                      "webhook %s: event %s delivered but not recorded; it will be sent again",
                      ep->log_url, d->event_id);
            ep->not_before_ms = now + s->initial_backoff_ms;
        }
    } else {
        char reason[CURL_ERROR_SIZE + 32];
        if (result != CURLE_OK)
            snprintf(reason, sizeof(reason), "%s",
                     ep->error[0] ? ep->error : curl_easy_strerror(result));
        else
            snprintf(reason, sizeof(reason), "HTTP status %ld", status);
        record_failure(s, ep, reason, now);
    }
    cap_outbox_delivery_deinit(d);
}

/* Finishes every completed transfer; returns how many there were. */
static int collect_finished(struct cap_webhook_sender *s)
{
    int finished = 0;
    int queued = 0;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(s->multi, &queued))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode result = msg->data.result;
        char *private_data = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &private_data);
        struct endpoint *ep = (struct endpoint *)(void *)private_data;
        if (ep && ep->busy) {
            finish_request(s, ep, result);
            finished++;
        }
    }
    return finished;
}

static bool is_due(const struct cap_webhook_sender *s, int64_t next_attempt_ms, int64_t now)
{
    return next_attempt_ms <= now ||
           next_attempt_ms - now > s->max_backoff_ms + CLOCK_STEP_SLACK_MS;
}

/* Starts the oldest pending delivery of every idle endpoint whose retry time has come.
 * Returns the wall-clock time the next pass is needed, unless something wakes us first. */
static int64_t start_due_requests(struct cap_webhook_sender *s, int64_t now)
{
    int64_t next_pass = now + IDLE_RECHECK_MS;
    for (size_t i = 0; i < s->endpoint_count && !atomic_load(&s->stopping); i++) {
        struct endpoint *ep = &s->endpoints[i];
        if (ep->busy)
            continue; /* its completion triggers a pass */
        if (ep->not_before_ms > now) {
            next_pass = min64(next_pass, ep->not_before_ms);
            continue;
        }
        struct cap_outbox_delivery d;
        int found = cap_outbox_next_pending(s->ob, ep->url, &d);
        if (found < 0) {
            ep->not_before_ms = now + DB_ERROR_RETRY_MS;
            next_pass = min64(next_pass, ep->not_before_ms);
            continue;
        }
        if (found == 0)
            continue;
        if (!is_due(s, d.next_attempt_ms, now)) {
            next_pass = min64(next_pass, d.next_attempt_ms);
            cap_outbox_delivery_deinit(&d);
            continue;
        }
        ep->current = d;
        int err = start_request(s, ep);
        if (err) {
            record_failure(s, ep, cap_strerror(err), now);
            next_pass = min64(next_pass, ep->not_before_ms);
            cap_outbox_delivery_deinit(&ep->current);
        }
    }
    return next_pass;
}

static void prune_if_due(struct cap_webhook_sender *s, int64_t now)
{
    if (now < s->next_prune_ms)
        return;
    int deleted = cap_outbox_prune(s->ob, now - PRUNE_AGE_MS, PRUNE_BATCH);
    /* A full batch means more is waiting: take the next batch on the next pass, so no pass
     * holds the outbox lock for long. */
    s->next_prune_ms = deleted >= PRUNE_BATCH ? now : now + PRUNE_INTERVAL_MS;
}

static void *sender_main(void *arg)
{
    struct cap_webhook_sender *s = arg;
    /* A receiver that hangs up mid-request must give EPIPE, not kill the process. */
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, NULL);

    /* Monotonic, so a wall-clock step cannot stall the loop; retry times are wall clock
     * because they are stored and must mean the same after a restart. */
    int64_t next_pass_mono = 0;
    while (!atomic_load(&s->stopping)) {
        int64_t now_mono = mono_ms();
        if (atomic_exchange(&s->wake_requested, false))
            next_pass_mono = now_mono;
        if (now_mono >= next_pass_mono) {
            int64_t now = wall_ms();
            prune_if_due(s, now);
            int64_t wait = start_due_requests(s, now) - now;
            next_pass_mono = now_mono + (wait < 0 ? 0 : min64(wait, IDLE_RECHECK_MS));
        }
        int running = 0;
        curl_multi_perform(s->multi, &running);
        if (collect_finished(s) > 0) {
            next_pass_mono = 0; /* an endpoint went idle: its next event may be due now */
            continue;
        }
        int64_t wait_ms = next_pass_mono - mono_ms();
        if (wait_ms > 0)
            curl_multi_poll(s->multi, NULL, 0, (int)min64(wait_ms, IDLE_RECHECK_MS), NULL);
    }
    for (size_t i = 0; i < s->endpoint_count; i++)
        endpoint_abort(s, &s->endpoints[i]);
    return NULL;
}

static bool url_already_listed(const struct cap_webhook_sender *s, const char *url)
{
    for (size_t i = 0; i < s->endpoint_count; i++) {
        if (strcmp(s->endpoints[i].url, url) == 0)
            return true;
    }
    return false;
}

static int sender_setup(struct cap_webhook_sender *s, const struct cap_webhook_config *cfg)
{
    s->initial_backoff_ms = cfg->initial_backoff_ms > 0 ? cfg->initial_backoff_ms
                                                        : CAP_WEBHOOK_DEFAULT_INITIAL_BACKOFF_MS;
    s->max_backoff_ms =
        cfg->max_backoff_ms > 0 ? cfg->max_backoff_ms : CAP_WEBHOOK_DEFAULT_MAX_BACKOFF_MS;
    if (s->max_backoff_ms < s->initial_backoff_ms)
        s->max_backoff_ms = s->initial_backoff_ms;
    s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : CAP_WEBHOOK_DEFAULT_TIMEOUT_MS;
    s->random_state = (uint64_t)cap_clock_mono_ns() ^ (uint64_t)(uintptr_t)s;
    if (cfg->secret && *cfg->secret && !(s->secret = strdup(cfg->secret)))
        return CAP_ENOMEM;
    s->multi = curl_multi_init();
    s->endpoints = calloc(cfg->url_count ? cfg->url_count : 1, sizeof(*s->endpoints));
    if (!s->multi || !s->endpoints)
        return CAP_ENOMEM;
    for (size_t i = 0; i < cfg->url_count; i++) {
        if (url_already_listed(s, cfg->urls[i]))
            continue;
        /* Counted before init so that a half-built endpoint is freed with the rest. */
        struct endpoint *ep = &s->endpoints[s->endpoint_count++];
        int err = endpoint_init(s, ep, cfg->urls[i]);
        if (err)
            return err;
    }
    return 0;
}

int cap_webhook_sender_start(struct cap_webhook_sender **out, struct cap_outbox *ob,
                             const struct cap_webhook_config *cfg)
{
    if (!out)
        return CAP_EINVAL;
    *out = NULL;
    if (!ob || !cfg || (cfg->url_count > 0 && !cfg->urls))
        return CAP_EINVAL;
    if (cfg->url_count > CAP_OUTBOX_MAX_ENDPOINTS)
        return CAP_ELIMIT;
    for (size_t i = 0; i < cfg->url_count; i++) {
        if (!cfg->urls[i] || !*cfg->urls[i])
            return CAP_EINVAL;
    }
    pthread_once(&curl_once, init_curl);
    if (curl_init_result != CURLE_OK) {
        CAP_ERROR(NULL, "webhook: curl_global_init failed: %s",
                  curl_easy_strerror(curl_init_result));
        return CAP_EIO;
    }
    struct cap_webhook_sender *s = calloc(1, sizeof(*s));
    if (!s)
        return CAP_ENOMEM;
    s->ob = ob;
    atomic_init(&s->stopping, false);
    atomic_init(&s->wake_requested, false);
    atomic_init(&s->delivered, 0);
    atomic_init(&s->failed_attempts, 0);
    int err = sender_setup(s, cfg);
    if (!err && pthread_create(&s->thread, NULL, sender_main, s) != 0) {
        CAP_ERROR(NULL, "webhook: cannot start the sender thread");
        err = CAP_EIO;
    }
    if (err) {
        sender_free(s);
        return err;
    }
    *out = s;
    return 0;
}

void cap_webhook_sender_wake(struct cap_webhook_sender *s)
{
    if (!s)
        return;
    atomic_store(&s->wake_requested, true);
    curl_multi_wakeup(s->multi);
}

int cap_webhook_sender_stop(struct cap_webhook_sender *s)
{
    if (!s)
        return 0;
    atomic_store(&s->stopping, true);
    curl_multi_wakeup(s->multi);
    int rc = pthread_join(s->thread, NULL);
    if (rc != 0) {
        /* Freeing under a thread that may still run would be worse than the leak. */
        CAP_ERROR(NULL, "webhook: cannot join the sender thread");
        return CAP_EIO;
    }
    sender_free(s);
    return 0;
}

void cap_webhook_sender_stats(struct cap_webhook_sender *s, struct cap_webhook_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    out->delivered = atomic_load(&s->delivered);
    out->failed_attempts = atomic_load(&s->failed_attempts);
}
