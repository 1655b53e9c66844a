/* Durable webhook outbox: lifecycle events and their per-endpoint deliveries in SQLite, so
 * every event reaches every endpoint at least once across crashes and restarts. One
 * connection per outbox behind a mutex; every call is safe from any thread. */
#ifndef CAP_HOOKS_OUTBOX_H
#define CAP_HOOKS_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

/* Limits on what enqueue accepts. An event id travels in an HTTP header, so it is limited
 * to printable ASCII without spaces. */
#define CAP_OUTBOX_MAX_EVENT_ID 128
#define CAP_OUTBOX_MAX_BODY (1024 * 1024)
#define CAP_OUTBOX_MAX_ENDPOINTS 64
#define CAP_OUTBOX_MAX_URL 2048

struct cap_outbox;

/* Opens (creating if needed) the outbox database at sqlite_path: WAL journal, FULL sync,
 * a busy timeout. Returns 0 or CAP_EIO / CAP_ENOMEM / CAP_EVERSION (newer schema). */
int cap_outbox_open(struct cap_outbox **out, const char *sqlite_path);
void cap_outbox_close(struct cap_outbox *ob);

/* Replaces the endpoint set used by later enqueues (the strings are copied; duplicates are
 * kept once). URLs must be http:// or https://. Returns 0, CAP_EINVAL or CAP_ELIMIT. */
int cap_outbox_set_endpoints(struct cap_outbox *ob, const char *const *urls, size_t count);

/* Durably records one event and one pending delivery per endpoint set at this moment, in
 * one transaction. body is copied. Returns 0, CAP_EEXIST when event_id was already
 * enqueued (so a retried enqueue is harmless), CAP_EINVAL for a malformed id, CAP_ELIMIT
 * for an oversized body, CAP_EIO/CAP_EAGAIN on a database failure. */
int cap_outbox_enqueue(struct cap_outbox *ob, const char *event_id, const char *body, size_t len);

/* Deliveries not yet acknowledged, or a negative CAP_E*. */
int64_t cap_outbox_backlog(struct cap_outbox *ob);

/* ---- used by the sender (webhook.c) ---- */

/* One pending delivery with its event; owned by the caller, released with deinit. */
struct cap_outbox_delivery {
    int64_t event_seq; /* enqueue order */
    char *event_id;
    uint8_t *body;
    size_t body_len;
    int64_t attempts;        /* failed attempts so far */
    int64_t next_attempt_ms; /* wall clock, ms since the Unix epoch */
};
void cap_outbox_delivery_deinit(struct cap_outbox_delivery *d);

/* The oldest unacknowledged delivery for url, in enqueue order. Returns 1 and fills *out,
 * 0 when nothing is pending for url, or a negative CAP_E*. */
int cap_outbox_next_pending(struct cap_outbox *ob, const char *url,
                            struct cap_outbox_delivery *out);

int cap_outbox_mark_delivered(struct cap_outbox *ob, int64_t event_seq, const char *url,
                              int64_t now_ms);
/* Counts one failed attempt and schedules the next one; error is kept for inspection. */
int cap_outbox_mark_failed(struct cap_outbox *ob, int64_t event_seq, const char *url,
                           int64_t next_attempt_ms, const char *error);

/* Deletes up to limit deliveries acknowledged before cutoff_ms, and up to limit events
 * created before cutoff_ms that no delivery refers to any more. Returns the number of rows
 * deleted or a negative CAP_E*. */
int cap_outbox_prune(struct cap_outbox *ob, int64_t cutoff_ms, int limit);

#endif
