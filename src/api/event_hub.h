/* The event hub behind GET /events: every event of this node (recording and room events,
 * job events and progress, whichever worker made them) in a ring of the last N, each with
 * a sequence number, and readers that park until there is something new. Parking and
 * waking go through the caller's functions, so the HTTP server can suspend and resume its
 * connections without the hub knowing about it. */
#ifndef CAP_API_EVENT_HUB_H
#define CAP_API_EVENT_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_EVENT_HUB_MAX_EVENT (256 * 1024)

struct cap_event_hub;

/* capacity: events kept for late readers (>= 16). */
int cap_event_hub_new(struct cap_event_hub **out, size_t capacity);
/* Every parked reader must have been woken (close does that) before this. */
void cap_event_hub_free(struct cap_event_hub *hub);

/* Appends a copy of one event (JSON text, one line) and wakes every parked reader. Events
 * over CAP_EVENT_HUB_MAX_EVENT are dropped. Returns its sequence number (from 1) or 0. */
uint64_t cap_event_hub_publish(struct cap_event_hub *hub, const char *json, size_t len);

/* The sequence number of the newest event (0: none yet). */
uint64_t cap_event_hub_head(struct cap_event_hub *hub);

/* The oldest event after *after that is still kept: copies its text (malloc'd, NUL-ended)
 * into *text and its sequence into *seq and returns 1; 0 if there is none. Events already
 * overwritten are skipped (a slow reader misses them; *seq tells by how many). */
int cap_event_hub_next(struct cap_event_hub *hub, uint64_t after, uint64_t *seq, char **text,
                       size_t *len);

/* If there is no event after `after` and the hub is open: calls park(user) and remembers
 * wake(user) for the next publish, wake_all or close; returns 1. Returns 0 when there is
 * something to read already, -1 when the hub is closed. park runs under the hub's lock,
 * so no publish can slip between the check and the parking. */
int cap_event_hub_wait(struct cap_event_hub *hub, uint64_t after, void (*park)(void *user),
                       void (*wake)(void *user), void *user);

/* Wakes every parked reader (for keep-alives). */
void cap_event_hub_wake_all(struct cap_event_hub *hub);
/* Wakes every parked reader; from now on wait returns -1. */
void cap_event_hub_close(struct cap_event_hub *hub);
bool cap_event_hub_closed(struct cap_event_hub *hub);

#endif
