/* The catalog: a SQLite index of rooms and recordings with the state each needs to outlive
 * a restart. Storage (the recording folders) stays the truth for media; the catalog is
 * what the daemon reads at startup to find rooms and recordings that were live. */
#ifndef CAP_STORE_CATALOG_H
#define CAP_STORE_CATALOG_H

#include <jansson.h>
#include <stddef.h>

struct cap_catalog;

int cap_catalog_open(struct cap_catalog **out, const char *path);
void cap_catalog_close(struct cap_catalog *cat);

int cap_catalog_put_room(struct cap_catalog *cat, const char *room_id, json_t *state);
/* state is cap_recording_state_json's; state_name its "state" (indexed for lookups). */
int cap_catalog_put_recording(struct cap_catalog *cat, const char *recording_id, const char *room_id,
                              const char *state_name, json_t *state);
/* Calls fn for every stored room / recording (state JSON borrowed for the call). */
int cap_catalog_each_room(struct cap_catalog *cat, void (*fn)(void *user, json_t *state), void *user);
int cap_catalog_each_recording(struct cap_catalog *cat, void (*fn)(void *user, json_t *state),
                               void *user);

#endif
