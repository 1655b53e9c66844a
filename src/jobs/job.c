/* The job model (job.h): names, ids, the API view of a job and its HookEvents. */
#include "jobs/job.h"

#include "capstan/error.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char *const state_names[] = {"queued", "processing", "ready", "failed"};

const char *cap_job_state_name(enum cap_job_state state)
{
    return (unsigned)state < 4 ? state_names[state] : "unknown";
}

int cap_job_state_parse(const char *name, enum cap_job_state *out)
{
    for (int i = 0; name && i < 4; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (enum cap_job_state)i;
            return 0;
        }
    }
    return CAP_EINVAL;
}

void cap_job_init(struct cap_job *job)
{
    memset(job, 0, sizeof(*job));
}

void cap_job_deinit(struct cap_job *job)
{
    json_decref(job->params);
    json_decref(job->result);
    job->params = job->result = NULL;
}

int cap_job_random_id(const char *prefix, char *out, size_t size)
{
    uint8_t raw[12];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n <= 0)
            return CAP_EIO;
        got += (size_t)n;
    }
    size_t plen = strlen(prefix);
    if (plen + 2 * sizeof(raw) + 1 > size)
        return CAP_ELIMIT;
    memcpy(out, prefix, plen);
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + plen + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

bool cap_job_kind_valid(const char *kind)
{
    static const char *const kinds[] = {"transmux", "compose", "convert", "export"};
    for (size_t i = 0; kind && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kind, kinds[i]) == 0)
            return true;
    return false;
}

static json_t *iso_time(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char text[40];
    cap_clock_format_iso8601(ms * CAP_NS_PER_MS, text, sizeof(text));
    return json_string(text);
}

json_t *cap_job_to_json(const struct cap_job *job)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:f, s:i}", "job_id", job->id, "kind", job->kind,
                          "status", cap_job_state_name(job->state), "progress", job->progress,
                          "attempts", job->attempts);
    if (!j)
        return NULL;
    json_object_set_new(j, "recording_id",
                        job->recording_id[0] ? json_string(job->recording_id) : json_null());
    json_object_set_new(j, "created_at", iso_time(job->created_ms));
    json_object_set_new(j, "updated_at", iso_time(job->updated_ms));
    json_object_set_new(j, "worker", job->owner[0] ? json_string(job->owner) : json_null());
    json_object_set(j, "params", job->params ? job->params : json_null());
    json_object_set(j, "result", job->result ? job->result : json_null());
    json_object_set_new(j, "error", job->error[0] ? json_string(job->error) : json_null());
    return j;
}

json_t *cap_job_event(const struct cap_job *job, int node, int64_t now_ms, const char *name,
                      json_t *body)
{
    char id[CAP_JOB_ID_MAX + 48];
    if (strcmp(name, "Progress") == 0)
        snprintf(id, sizeof(id), "evt_%s_progress_%lld", job->id, (long long)now_ms);
    else
        snprintf(id, sizeof(id), "evt_%s_%s", job->id, name);
    for (char *c = id; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    json_t *inner =
        json_pack("{s:s, s:s, s:s}", "app", "capstan", "job_id", job->id, "kind", job->kind);
    if (!inner) {
        json_decref(body);
        return NULL;
    }
    json_object_set_new(inner, "recording_id",
                        job->recording_id[0] ? json_string(job->recording_id) : json_null());
    json_object_set_new(inner, "event", json_pack("{s:o}", name, body ? body : json_object()));
    return json_pack("{s:s, s:i, s:I, s:{s:o}}", "id", id, "node", node, "ts", (json_int_t)now_ms,
                     "event", "Compose", inner);
}

char *cap_job_dump(const json_t *value, size_t *len)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (text && len)
        *len = strlen(text);
    return text;
}

void cap_job_lease_for(struct cap_job_lease *lease, const struct cap_job *job)
{
    snprintf(lease->job_id, sizeof(lease->job_id), "%s", job->id);
    snprintf(lease->kind, sizeof(lease->kind), "%s", job->kind);
    snprintf(lease->recording_id, sizeof(lease->recording_id), "%s", job->recording_id);
}

bool cap_job_key_valid(const char *key)
{
    size_t len = key ? strlen(key) : 0;
    if (len == 0 || len > 1024 || key[0] == '/' || key[len - 1] == '/')
        return false;
    for (const char *c = key; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || strchr("-_.:@/", *c);
        if (!ok)
            return false;
    }
    /* No empty, "." or ".." part. */
    for (const char *part = key; *part;) {
        size_t n = strcspn(part, "/");
        if (n == 0 || (n == 1 && part[0] == '.') || (n == 2 && part[0] == '.' && part[1] == '.'))
            return false;
        part += n;
        if (*part == '/')
            part++;
    }
    return true;
}
