/* HTTP server (http.h). Each request's body is gathered up to a hard limit, its key and
 * role checked, its JSON parsed, then one service call answers it. */
#include "api/http.h"

#include "util/buf.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (1u << 20)
#define MAX_SEGMENTS 6

struct cap_http {
    struct MHD_Daemon *daemon;
    struct cap_api_key *keys;
    size_t key_count;
    struct cap_service *svc;
    struct cap_jobs_api *jobs;
    uint16_t port;
};

struct request {
    struct cap_buf body;
    bool too_large;
};

enum cap_role cap_role_parse(const char *name)
{
    static const char *const names[] = {"", "viewer", "worker", "sfu", "admin"};
    for (int i = 1; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return (enum cap_role)i;
    return CAP_ROLE_NONE;
}

const char *cap_role_name(enum cap_role role)
{
    static const char *const names[] = {"none", "viewer", "worker", "sfu", "admin"};
    return role <= CAP_ROLE_ADMIN ? names[role] : "none";
}

/* Roles nest: admin may do everything, sfu and worker may also read. */
static bool role_allows(enum cap_role have, enum cap_role need)
{
    if (need == CAP_ROLE_NONE || have == CAP_ROLE_ADMIN)
        return true;
    if (need == CAP_ROLE_VIEWER)
        return have != CAP_ROLE_NONE;
    return have == need;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, int status, const char *type,
                                 char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct cap_reply *r)
{
    char *text = json_dumps(r->body ? r->body : json_null(), JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(r->body);
    r->body = NULL;
    if (!text)
        return MHD_NO;
    size_t len = strlen(text);
    char *with_newline = realloc(text, len + 2);
    if (with_newline) {
        text = with_newline;
        text[len++] = '\n';
        text[len] = '\0';
    }
    return send_text(conn, r->status, "application/json", text, len);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, int status, int code, const char *message)
{
    struct cap_reply r;
    cap_reply_error(&r, status, code, message);
    return send_reply(conn, &r);
}

/* The key's role, from "Authorization: Bearer KEY". */
static enum cap_role caller_role(struct cap_http *http, struct MHD_Connection *conn, bool *had_key)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    *had_key = false;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return CAP_ROLE_NONE;
    const char *key = auth + 7;
    while (*key == ' ')
        key++;
    *had_key = *key != '\0';
    size_t n = strlen(key);
    for (size_t i = 0; i < http->key_count; i++) {
        /* Compare without an early exit, so timing does not leak how much matched. */
        const char *k = http->keys[i].key;
        size_t kn = strlen(k);
        unsigned diff = (unsigned)(kn ^ n);
        for (size_t j = 0; j < n; j++)
            diff |= (unsigned)(unsigned char)key[j] ^ (unsigned)(unsigned char)(j < kn ? k[j] : 0);
        if (diff == 0)
            return http->keys[i].role;
    }
    return CAP_ROLE_NONE;
}

enum route_id {
    R_NONE,
    R_HEALTH,
    R_METRICS,
    R_ROOM,
    R_PEERS,
    R_PEER,
    R_PRODUCERS,
    R_PRODUCER,
    R_PRODUCER_PAUSE,
    R_PRODUCER_RESUME,
    R_SPEAKER,
    R_ROOM_RECORDINGS,
    R_RECORDINGS,
    R_RECORDING,
    R_RECORDING_ACTION,
    R_CONVERT_JOBS,
    R_CONVERT_JOB,
    R_COMPOSITION,
    R_EXPORT,
    R_EVENTS,
};

/* Splits "/a/b/c" into segments (no empty ones); false if there are too many. */
static int split_path(char *path, char **seg)
{
    int n = 0;
    for (char *tok = strtok(path, "/"); tok; tok = strtok(NULL, "/")) {
        if (n == MAX_SEGMENTS)
            return -1;
        seg[n++] = tok;
    }
    return n;
}

static enum route_id match(char **seg, int n)
{
    if (n == 1 && strcmp(seg[0], "health") == 0)
        return R_HEALTH;
    if (n == 1 && strcmp(seg[0], "metrics") == 0)
        return R_METRICS;
    if (n >= 2 && strcmp(seg[0], "rooms") == 0) {
        if (n == 2)
            return R_ROOM;
        if (n == 3 && strcmp(seg[2], "peers") == 0)
            return R_PEERS;
        if (n == 4 && strcmp(seg[2], "peers") == 0)
            return R_PEER;
        if (n == 3 && strcmp(seg[2], "producers") == 0)
            return R_PRODUCERS;
        if (n == 4 && strcmp(seg[2], "producers") == 0)
            return R_PRODUCER;
        if (n == 5 && strcmp(seg[2], "producers") == 0 && strcmp(seg[4], "pause") == 0)
            return R_PRODUCER_PAUSE;
        if (n == 5 && strcmp(seg[2], "producers") == 0 && strcmp(seg[4], "resume") == 0)
            return R_PRODUCER_RESUME;
        if (n == 3 && strcmp(seg[2], "active-speaker") == 0)
            return R_SPEAKER;
        if (n == 3 && strcmp(seg[2], "recordings") == 0)
            return R_ROOM_RECORDINGS;
    }
    if (n == 1 && strcmp(seg[0], "recordings") == 0)
        return R_RECORDINGS;
    if (n == 2 && strcmp(seg[0], "recordings") == 0)
        return R_RECORDING;
    if (n == 3 && strcmp(seg[0], "recordings") == 0 &&
        (strcmp(seg[2], "stop") == 0 || strcmp(seg[2], "pause") == 0 || strcmp(seg[2], "resume") == 0))
        return R_RECORDING_ACTION;
    if (n == 3 && strcmp(seg[0], "recordings") == 0 && strcmp(seg[2], "composition") == 0)
        return R_COMPOSITION;
    if (n == 3 && strcmp(seg[0], "recordings") == 0 && strcmp(seg[2], "export") == 0)
        return R_EXPORT;
    if (n >= 3 && n <= 4 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "convert") == 0 &&
        strcmp(seg[2], "job") == 0)
        return n == 3 ? R_CONVERT_JOBS : R_CONVERT_JOB;
    if (n == 1 && strcmp(seg[0], "events") == 0)
        return R_EVENTS;
    return R_NONE;
}

/* The role a method on a route needs, or -1 if the route has no such method. */
static int needed_role(enum route_id route, const char *method)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    bool put = strcmp(method, "PUT") == 0, del = strcmp(method, "DELETE") == 0;
    switch (route) {
    case R_HEALTH:
    case R_METRICS:
        return get ? CAP_ROLE_NONE : -1;
    case R_ROOM:
        return get ? CAP_ROLE_VIEWER : (put || del) ? CAP_ROLE_SFU : -1;
    case R_PEERS:
    case R_PRODUCERS:
    case R_SPEAKER:
    case R_ROOM_RECORDINGS:
    case R_PRODUCER_PAUSE:
    case R_PRODUCER_RESUME:
    case R_RECORDING_ACTION:
        return post ? CAP_ROLE_SFU : -1;
    case R_PEER:
        return del ? CAP_ROLE_SFU : -1;
    case R_PRODUCER:
        return (put || del) ? CAP_ROLE_SFU : -1;
    case R_RECORDINGS:
    case R_RECORDING:
        return get ? CAP_ROLE_VIEWER : -1;
    case R_CONVERT_JOBS:
        return post ? CAP_ROLE_WORKER : -1;
    case R_CONVERT_JOB:
    case R_EVENTS:
        return get ? CAP_ROLE_VIEWER : -1;
    case R_COMPOSITION:
        return get ? CAP_ROLE_VIEWER : put ? CAP_ROLE_SFU : -1;
    case R_EXPORT:
        return post ? CAP_ROLE_SFU : -1;
    case R_NONE:
        break;
    }
    return -1;
}

static enum MHD_Result dispatch(struct cap_http *http, struct MHD_Connection *conn, const char *url,
                                const char *method, struct request *req)
{
    char path[2048];
    if (strlen(url) >= sizeof(path))
        return send_error(conn, 414, CAP_API_BAD_REQUEST, "path too long");
    strcpy(path, url);
    char *seg[MAX_SEGMENTS];
    int n = split_path(path, seg);
    enum route_id route = n < 0 ? R_NONE : match(seg, n);
    if (route == R_NONE)
        return send_error(conn, 404, CAP_API_NO_ROUTE, "no such route (see docs/api.md)");
    int need = needed_role(route, method);
    if (need < 0)
        return send_error(conn, 405, CAP_API_BAD_METHOD, "method not allowed on this route");
    bool had_key;
    enum cap_role role = caller_role(http, conn, &had_key);
    if (need != CAP_ROLE_NONE && role == CAP_ROLE_NONE)
        return send_error(conn, 401, CAP_API_UNAUTHENTICATED,
                          had_key ? "unknown API key" : "missing API key: send Authorization: Bearer KEY");
    if (!role_allows(role, (enum cap_role)need)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "this route needs the %s role; this key is %s",
                 cap_role_name((enum cap_role)need), cap_role_name(role));
        return send_error(conn, 403, CAP_API_FORBIDDEN, msg);
    }
    if (req->too_large)
        return send_error(conn, 413, CAP_API_TOO_LARGE, "request body larger than 1 MiB");

    json_t *body = NULL;
    if (req->body.len) {
        json_error_t jerr;
        body = json_loadb((const char *)req->body.data, req->body.len, 0, &jerr);
        if (!body) {
            char msg[256];
            snprintf(msg, sizeof(msg), "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                     jerr.text);
            return send_error(conn, 400, CAP_API_BAD_REQUEST, msg);
        }
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        body = json_object();
    }
    if (body && !json_is_object(body)) {
        json_decref(body);
        return send_error(conn, 400, CAP_API_BAD_REQUEST, "the body must be a JSON object");
    }

    struct cap_service *svc = http->svc;
    struct cap_reply r = {0};
    switch (route) {
    case R_HEALTH:
        cap_service_health(svc, &r);
        break;
    case R_METRICS: {
        json_decref(body);
        char *text = cap_service_metrics(svc);
        if (!text)
            return send_error(conn, 500, CAP_API_STORAGE, "metrics unavailable");
        return send_text(conn, 200, "text/plain; version=0.0.4", text, strlen(text));
    }
    case R_ROOM:
        if (strcmp(method, "PUT") == 0)
            cap_service_put_room(svc, seg[1], body, &r);
        else if (strcmp(method, "DELETE") == 0)
            cap_service_close_room(svc, seg[1], &r);
        else
            cap_service_get_room(svc, seg[1], &r);
        break;
    case R_PEERS:
        cap_service_peer_join(svc, seg[1], body, &r);
        break;
    case R_PEER:
        cap_service_peer_leave(svc, seg[1], seg[3], &r);
        break;
    case R_PRODUCERS:
        cap_service_producer_create(svc, seg[1], body, &r);
        break;
    case R_PRODUCER:
        if (strcmp(method, "PUT") == 0)
            cap_service_producer_update(svc, seg[1], seg[3], body, &r);
        else
            cap_service_producer_close(svc, seg[1], seg[3], &r);
        break;
    case R_PRODUCER_PAUSE:
    case R_PRODUCER_RESUME:
        cap_service_producer_pause(svc, seg[1], seg[3], route == R_PRODUCER_PAUSE, &r);
        break;
    case R_SPEAKER:
        cap_service_active_speaker(svc, seg[1], body, &r);
        break;
    case R_ROOM_RECORDINGS:
        cap_service_start_recording(svc, seg[1], body, &r);
        break;
    case R_RECORDINGS: {
        cap_service_list_recordings(svc, MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "room_id"), &r);
        size_t i;
        json_t *rec;
        json_array_foreach(json_object_get(r.body, "recordings"), i, rec)
        {
            cap_jobs_api_decorate_recording(http->jobs, rec);
        }
        break;
    }
    case R_RECORDING:
        cap_service_get_recording(svc, seg[1], &r);
        if (r.status == 200)
            cap_jobs_api_decorate_recording(http->jobs, r.body);
        break;
    case R_RECORDING_ACTION:
        cap_service_recording_action(svc, seg[1], seg[2], &r);
        break;
    case R_CONVERT_JOBS:
        cap_jobs_api_convert(http->jobs, body, &r);
        break;
    case R_CONVERT_JOB:
        cap_jobs_api_get_job(http->jobs, seg[3], &r);
        break;
    case R_COMPOSITION:
        if (strcmp(method, "PUT") == 0)
            cap_jobs_api_put_composition(http->jobs, seg[1], body, &r);
        else
            cap_jobs_api_get_composition(http->jobs, seg[1], &r);
        break;
    case R_EXPORT:
        cap_jobs_api_export(http->jobs, seg[1], body, &r);
        break;
    case R_EVENTS: {
        json_decref(body);
        struct MHD_Response *stream = cap_jobs_api_event_stream(http->jobs, conn);
        if (!stream)
            return send_error(conn, 503, CAP_API_TOO_MANY_STREAMS,
                              http->jobs ? "too many event streams open" : "no event stream on this node");
        enum MHD_Result ret = MHD_queue_response(conn, 200, stream);
        MHD_destroy_response(stream);
        return ret;
    }
    case R_NONE:
        break;
    }
    json_decref(body);
    return send_reply(conn, &r);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size,
                              void **con_cls)
{
    (void)version;
    struct cap_http *http = cls;
    struct request *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        cap_buf_init(&req->body, BODY_MAX);
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!req->too_large && cap_buf_append(&req->body, upload_data, *upload_size) != 0)
            req->too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    return dispatch(http, conn, url, method, req);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    struct request *req = *con_cls;
    if (req) {
        cap_buf_deinit(&req->body);
        free(req);
        *con_cls = NULL;
    }
}

int cap_http_start(struct cap_http **out, const struct cap_http_config *cfg, char *why, size_t why_size)
{
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    /* Suspend/resume: GET /events parks its connection while there is nothing to send. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (inet_pton(AF_INET, cfg->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(cfg->port);
    } else if (inet_pton(AF_INET6, cfg->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(why, why_size, "--http: '%s' is not an IPv4 or IPv6 address", cfg->host);
        return CAP_EINVAL;
    }
    struct cap_http *http = calloc(1, sizeof(*http));
    if (!http)
        return CAP_ENOMEM;
    http->svc = cfg->svc;
    http->jobs = cfg->jobs;
    http->key_count = cfg->key_count;
    http->keys = calloc(cfg->key_count ? cfg->key_count : 1, sizeof(*http->keys));
    if (!http->keys) {
        free(http);
        return CAP_ENOMEM;
    }
    memcpy(http->keys, cfg->keys, cfg->key_count * sizeof(*http->keys));
    http->daemon = MHD_start_daemon(flags, cfg->port, NULL, NULL, handle, http,
                                    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                    MHD_OPTION_THREAD_POOL_SIZE, cfg->threads ? cfg->threads : 2u,
                                    MHD_OPTION_NOTIFY_COMPLETED, completed, http,
                                    MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                                    MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_END);
    if (!http->daemon) {
        snprintf(why, why_size, "cannot listen on %s:%u (in use?)", cfg->host, cfg->port);
        free(http->keys);
        free(http);
        return CAP_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info ? info->port : cfg->port;
    *out = http;
    return 0;
}

uint16_t cap_http_port(const struct cap_http *http)
{
    return http->port;
}

void cap_http_stop(struct cap_http *http)
{
    if (!http)
        return;
    /* Event streams end first: a suspended connection must be resumed before the stop. */
    cap_jobs_api_shutdown(http->jobs);
    MHD_stop_daemon(http->daemon);
    free(http->keys);
    free(http);
}
