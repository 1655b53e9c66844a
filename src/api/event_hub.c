/* The event hub (event_hub.h): a ring of copied events under one mutex, and a list of
 * parked readers' wake functions, emptied by every publish. */
#include "api/event_hub.h"

#include "capstan/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARKED 256

struct slot {
    uint64_t seq;
    char *text;
    size_t len;
};

struct parked {
    void (*wake)(void *user);
    void *user;
};

struct cap_event_hub {
    pthread_mutex_t lock;
    struct slot *ring;
    size_t capacity;
    uint64_t head; /* newest sequence */
    struct parked parked[MAX_PARKED];
    size_t parked_count;
    bool closed;
};

int cap_event_hub_new(struct cap_event_hub **out, size_t capacity)
{
    if (capacity < 16)
        capacity = 16;
    struct cap_event_hub *hub = calloc(1, sizeof(*hub));
    if (!hub)
        return CAP_ENOMEM;
    hub->ring = calloc(capacity, sizeof(*hub->ring));
    if (!hub->ring) {
        free(hub);
        return CAP_ENOMEM;
    }
    hub->capacity = capacity;
    pthread_mutex_init(&hub->lock, NULL);
    *out = hub;
    return 0;
}

void cap_event_hub_free(struct cap_event_hub *hub)
{
    if (!hub)
        return;
    for (size_t i = 0; i < hub->capacity; i++)
        free(hub->ring[i].text);
    free(hub->ring);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}

/* Called with the lock held. */
static void wake_parked(struct cap_event_hub *hub)
{
    for (size_t i = 0; i < hub->parked_count; i++)
        hub->parked[i].wake(hub->parked[i].user);
    hub->parked_count = 0;
}

uint64_t cap_event_hub_publish(struct cap_event_hub *hub, const char *json, size_t len)
{
    if (!hub || !json || len == 0 || len > CAP_EVENT_HUB_MAX_EVENT)
        return 0;
    char *copy = malloc(len + 1);
    if (!copy)
        return 0;
    memcpy(copy, json, len);
    copy[len] = '\0';
    /* One event per SSE data line: JSON text has no raw newlines, but be sure. */
    for (size_t i = 0; i < len; i++)
        if (copy[i] == '\n' || copy[i] == '\r')
            copy[i] = ' ';
    pthread_mutex_lock(&hub->lock);
    uint64_t seq = ++hub->head;
    struct slot *s = &hub->ring[seq % hub->capacity];
    free(s->text);
    *s = (struct slot){.seq = seq, .text = copy, .len = len};
    wake_parked(hub);
    pthread_mutex_unlock(&hub->lock);
    return seq;
}

uint64_t cap_event_hub_head(struct cap_event_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    uint64_t head = hub->head;
    pthread_mutex_unlock(&hub->lock);
    return head;
}

int cap_event_hub_next(struct cap_event_hub *hub, uint64_t after, uint64_t *seq, char **text,
                       size_t *len)
{
    pthread_mutex_lock(&hub->lock);
    int found = 0;
    if (after < hub->head) {
        uint64_t oldest = hub->head >= hub->capacity ? hub->head - hub->capacity + 1 : 1;
        uint64_t want = after + 1 < oldest ? oldest : after + 1;
        struct slot *s = &hub->ring[want % hub->capacity];
        if (s->seq == want && s->text) {
            *text = malloc(s->len + 1);
            if (*text) {
                memcpy(*text, s->text, s->len + 1);
                *len = s->len;
                *seq = want;
                found = 1;
            }
        }
    }
    pthread_mutex_unlock(&hub->lock);
    return found;
}

int cap_event_hub_wait(struct cap_event_hub *hub, uint64_t after, void (*park)(void *user),
                       void (*wake)(void *user), void *user)
{
    pthread_mutex_lock(&hub->lock);
    int rc;
    if (hub->closed) {
        rc = -1;
    } else if (after < hub->head || hub->parked_count == MAX_PARKED) {
        rc = 0; /* read now (a full list only costs the reader a busy turn) */
    } else {
        park(user);
        hub->parked[hub->parked_count++] = (struct parked){wake, user};
        rc = 1;
    }
    pthread_mutex_unlock(&hub->lock);
    return rc;
}

void cap_event_hub_wake_all(struct cap_event_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    wake_parked(hub);
    pthread_mutex_unlock(&hub->lock);
}

void cap_event_hub_close(struct cap_event_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    hub->closed = true;
    wake_parked(hub);
    pthread_mutex_unlock(&hub->lock);
}

bool cap_event_hub_closed(struct cap_event_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    bool closed = hub->closed;
    pthread_mutex_unlock(&hub->lock);
    return closed;
}
