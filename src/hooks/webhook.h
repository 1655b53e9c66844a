/* Webhook sender: one thread that POSTs outbox deliveries to their endpoints, signed with
 * HMAC-SHA256, retrying each failure with capped exponential backoff. Each endpoint gets
 * its events in enqueue order; a failing endpoint holds up only itself. */
#ifndef CAP_HOOKS_WEBHOOK_H
#define CAP_HOOKS_WEBHOOK_H

#include "hooks/outbox.h"

#include <stddef.h>
#include <stdint.h>

#define CAP_WEBHOOK_DEFAULT_INITIAL_BACKOFF_MS 500
#define CAP_WEBHOOK_DEFAULT_MAX_BACKOFF_MS 60000
#define CAP_WEBHOOK_DEFAULT_TIMEOUT_MS 5000
/* "sha256=" + 64 hex digits + NUL. */
#define CAP_WEBHOOK_SIGNATURE_SIZE 72

struct cap_webhook_config {
    const char *const *urls; /* endpoints this sender serves; normally the outbox's set */
    size_t url_count;
    const char *secret;         /* HMAC key; NULL or "" sends unsigned */
    int64_t initial_backoff_ms; /* <= 0: default */
    int64_t max_backoff_ms;     /* <= 0: default; raised to initial if below it */
    long timeout_ms;            /* whole request, <= 0: default */
};

struct cap_webhook_sender;

/* Starts the sender thread. The config is copied; ob must outlive the sender. Deliveries
 * whose URL is not in cfg->urls are left pending. Returns 0, CAP_EINVAL, CAP_ELIMIT,
 * CAP_ENOMEM or CAP_EIO (libcurl or thread setup failed). */
int cap_webhook_sender_start(struct cap_webhook_sender **out, struct cap_outbox *ob,
                             const struct cap_webhook_config *cfg);
/* Something was enqueued: look now instead of at the next scheduled pass. Any thread; not
 * concurrently with stop. */
void cap_webhook_sender_wake(struct cap_webhook_sender *s);
/* Stops and joins the thread within a fraction of a second, aborting a request in flight
 * (not counted as an attempt). Undelivered rows stay pending for the next start. Frees s.
 * Returns 0 or CAP_EIO when the thread could not be joined. */
int cap_webhook_sender_stop(struct cap_webhook_sender *s);

struct cap_webhook_stats {
    uint64_t delivered;       /* deliveries acknowledged with a 2xx */
    uint64_t failed_attempts; /* attempts that got non-2xx, a connect error or a timeout */
};
void cap_webhook_sender_stats(struct cap_webhook_sender *s, struct cap_webhook_stats *out);

/* Writes "sha256=" + lowercase hex of HMAC-SHA256(secret, body) into out, as sent in the
 * X-Capstan-Signature header; out_size must be at least CAP_WEBHOOK_SIGNATURE_SIZE. Writes
 * an empty string when secret is NULL or empty, out_size is too small or HMAC fails. */
void cap_webhook_sign(const char *secret, const uint8_t *body, size_t len, char *out,
                      size_t out_size);

/* Delay before the next attempt after failed_attempts failures (>= 1): initial doubled
 * per failure, capped at max, then shortened by up to a tenth using random (any value) so
 * that many capstans do not retry in lockstep. */
int64_t cap_webhook_backoff_ms(int64_t initial_ms, int64_t max_ms, int64_t failed_attempts,
                               uint32_t random);

#endif
