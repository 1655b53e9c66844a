/* The HTTP front door (libmicrohttpd): routes of docs/api.md onto the service, bearer
 * API keys with roles, request size limits, and JSON errors for everything that fails. */
#ifndef CAP_API_HTTP_H
#define CAP_API_HTTP_H

#include "api/jobs_api.h"
#include "api/service.h"

#include <stddef.h>
#include <stdint.h>

enum cap_role {
    CAP_ROLE_NONE = 0,
    CAP_ROLE_VIEWER = 1,
    CAP_ROLE_WORKER = 2,
    CAP_ROLE_SFU = 3,
    CAP_ROLE_ADMIN = 4,
};

/* "admin", "sfu", "worker", "viewer"; CAP_ROLE_NONE if unknown. */
enum cap_role cap_role_parse(const char *name);
const char *cap_role_name(enum cap_role role);

struct cap_api_key {
    char key[256];
    enum cap_role role;
};

struct cap_http_config {
    const char *host;         /* listen address */
    uint16_t port;            /* 0: any free port */
    const struct cap_api_key *keys;
    size_t key_count;
    struct cap_service *svc;
    unsigned threads;         /* 0: 2 */
    struct cap_jobs_api *jobs; /* job routes and GET /events; NULL: they answer 503 */
};

struct cap_http;

int cap_http_start(struct cap_http **out, const struct cap_http_config *cfg, char *why, size_t why_size);
uint16_t cap_http_port(const struct cap_http *http);
void cap_http_stop(struct cap_http *http);

#endif
