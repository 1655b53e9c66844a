/* Composition State (composition.h): strict parsing of the reference shape, so a bad
 * document is refused with the field it got wrong instead of composing something else. */
#include "media/composition.h"

#include "capstan/error.h"
#include "util/fs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const layout_names[] = {
    [CAP_LAYOUT_GRID] = "grid",
    [CAP_LAYOUT_SPEAKER] = "speaker",
    [CAP_LAYOUT_PINNED] = "pinned",
    [CAP_LAYOUT_SCREENSHARE] = "screenshare",
};

const char *cap_layout_name(enum cap_layout layout)
{
    if (layout == CAP_LAYOUT_DEFAULT)
        return "grid";
    if ((size_t)layout < sizeof(layout_names) / sizeof(layout_names[0]) && layout_names[layout])
        return layout_names[layout];
    return "unknown";
}

int cap_layout_parse(const char *name, enum cap_layout *out)
{
    for (size_t i = 0; name && i < sizeof(layout_names) / sizeof(layout_names[0]); i++) {
        if (layout_names[i] && strcmp(layout_names[i], name) == 0) {
            *out = (enum cap_layout)i;
            return 0;
        }
    }
    return CAP_EINVAL;
}

static int fail(char *why, size_t why_size, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t why_size, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && why_size)
        vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
    return err;
}

/* An optional string member; false (with why) when present but not a string or too long. */
static bool opt_string(json_t *obj, const char *key, char *dst, size_t size, const char *where, char *why,
                       size_t why_size)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        fail(why, why_size, 0, "%s.%s must be a string", where, key);
        return false;
    }
    if (json_string_length(v) >= size || json_string_length(v) == 0) {
        fail(why, why_size, 0, "%s.%s must be 1 to %zu characters", where, key, size - 1);
        return false;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* "1920x1080": even sizes from 16 to 7680 x 4320. */
static int parse_resolution(const char *text, unsigned *w, unsigned *h)
{
    unsigned a, b;
    char tail;
    if (sscanf(text, "%u%*[xX]%u%c", &a, &b, &tail) != 2)
        return CAP_EFORMAT;
    if (a < 16 || b < 16 || a > 7680 || b > 4320 || (a & 1) || (b & 1))
        return CAP_ERANGE;
    *w = a;
    *h = b;
    return 0;
}

static int parse_event(json_t *e, size_t i, struct cap_composition_event *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(e))
        return fail(why, why_size, CAP_EFORMAT, "timeline[%zu] must be an object", i);
    json_t *t = json_object_get(e, "t");
    if (!json_is_integer(t) && !json_is_real(t))
        return fail(why, why_size, CAP_EFORMAT, "timeline[%zu].t must be a number of ms", i);
    double ms = json_number_value(t);
    if (ms < 0 || ms > 1e12)
        return fail(why, why_size, CAP_ERANGE, "timeline[%zu].t must be 0 or more ms (and sane)", i);
    out->t_ms = (int64_t)ms;
    const char *type = json_string_value(json_object_get(e, "type"));
    if (!type)
        return fail(why, why_size, CAP_EFORMAT, "timeline[%zu].type must be a string", i);
    char where[48];
    snprintf(where, sizeof(where), "timeline[%zu]", i);
    if (strcmp(type, "layout") == 0) {
        out->type = CAP_COMPOSITION_LAYOUT;
        const char *name = json_string_value(json_object_get(e, "layout"));
        if (!name || cap_layout_parse(name, &out->layout) != 0)
            return fail(why, why_size, CAP_EFORMAT,
                        "%s.layout must be \"grid\", \"speaker\", \"pinned\" or \"screenshare\"", where);
        return 0;
    }
    if (strcmp(type, "pin") == 0) {
        json_t *peer = json_object_get(e, "peer_id");
        if (!peer || json_is_null(peer)) {
            out->type = CAP_COMPOSITION_UNPIN;
            return 0;
        }
        out->type = CAP_COMPOSITION_PIN;
        if (!opt_string(e, "peer_id", out->peer_id, sizeof(out->peer_id), where, why, why_size))
            return CAP_EFORMAT;
        return 0;
    }
    if (strcmp(type, "unpin") == 0) {
        out->type = CAP_COMPOSITION_UNPIN;
        return 0;
    }
    return fail(why, why_size, CAP_EFORMAT,
                "timeline[%zu].type must be \"layout\", \"pin\" or \"unpin\", not \"%.40s\"", i, type);
}

static int parse_track(json_t *t, size_t i, struct cap_composition_track *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    char where[48];
    snprintf(where, sizeof(where), "tracks[%zu]", i);
    if (!json_is_object(t))
        return fail(why, why_size, CAP_EFORMAT, "%s must be an object", where);
    if (!json_is_string(json_object_get(t, "peer_id")) && !json_is_string(json_object_get(t, "track_id")))
        return fail(why, why_size, CAP_EFORMAT, "%s needs a peer_id (or a track_id)", where);
    if (!opt_string(t, "peer_id", out->peer_id, sizeof(out->peer_id), where, why, why_size) ||
        !opt_string(t, "track_id", out->track_id, sizeof(out->track_id), where, why, why_size))
        return CAP_EFORMAT;
    const char *flags[] = {"muted", "hidden"};
    bool *dst[] = {&out->muted, &out->hidden};
    for (size_t k = 0; k < 2; k++) {
        json_t *v = json_object_get(t, flags[k]);
        if (v && !json_is_boolean(v))
            return fail(why, why_size, CAP_EFORMAT, "%s.%s must be true or false", where, flags[k]);
        *dst[k] = json_is_true(v);
    }
    return 0;
}

static int parse_export(json_t *ex, struct cap_composition *out, char *why, size_t why_size)
{
    if (!ex || json_is_null(ex))
        return 0;
    if (!json_is_object(ex))
        return fail(why, why_size, CAP_EFORMAT, "export must be an object");
    json_t *res = json_object_get(ex, "resolution");
    if (res && !json_is_null(res)) {
        int err = json_is_string(res) ? parse_resolution(json_string_value(res), &out->width, &out->height)
                                      : CAP_EFORMAT;
        if (err)
            return fail(why, why_size, err,
                        "export.resolution must be \"WIDTHxHEIGHT\", even sizes from 16x16 to 7680x4320");
    }
    json_t *fps = json_object_get(ex, "fps");
    if (fps && !json_is_null(fps)) {
        if (!json_is_integer(fps) || json_integer_value(fps) < 1 || json_integer_value(fps) > 120)
            return fail(why, why_size, CAP_ERANGE, "export.fps must be an integer from 1 to 120");
        out->fps = (unsigned)json_integer_value(fps);
    }
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const struct cap_composition_event *x = a, *y = b;
    if (x->t_ms != y->t_ms)
        return x->t_ms < y->t_ms ? -1 : 1;
    return 0;
}

int cap_composition_parse(json_t *doc, struct cap_composition *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(doc))
        return fail(why, why_size, CAP_EFORMAT, "a Composition State must be a JSON object");
    int err = 0;
    if (!opt_string(doc, "recording_id", out->recording_id, sizeof(out->recording_id), "composition", why,
                    why_size) ||
        !opt_string(doc, "room_id", out->room_id, sizeof(out->room_id), "composition", why, why_size))
        return CAP_EFORMAT;
    json_t *layout = json_object_get(doc, "layout");
    if (layout && !json_is_null(layout) &&
        (!json_is_string(layout) || cap_layout_parse(json_string_value(layout), &out->layout) != 0))
        return fail(why, why_size, CAP_EFORMAT,
                    "layout must be \"grid\", \"speaker\", \"pinned\" or \"screenshare\"");
    json_t *timeline = json_object_get(doc, "timeline");
    if (timeline && !json_is_null(timeline) && !json_is_array(timeline))
        return fail(why, why_size, CAP_EFORMAT, "timeline must be an array");
    json_t *tracks = json_object_get(doc, "tracks");
    if (tracks && !json_is_null(tracks) && !json_is_array(tracks))
        return fail(why, why_size, CAP_EFORMAT, "tracks must be an array");
    size_t events = json_array_size(timeline), ntracks = json_array_size(tracks);
    if (events > CAP_COMPOSITION_MAX_EVENTS)
        return fail(why, why_size, CAP_ELIMIT, "timeline has more than %d events", CAP_COMPOSITION_MAX_EVENTS);
    if (ntracks > CAP_COMPOSITION_MAX_TRACKS)
        return fail(why, why_size, CAP_ELIMIT, "tracks has more than %d entries", CAP_COMPOSITION_MAX_TRACKS);
    out->events = calloc(events ? events : 1, sizeof(*out->events));
    out->tracks = calloc(ntracks ? ntracks : 1, sizeof(*out->tracks));
    if (!out->events || !out->tracks) {
        cap_composition_deinit(out);
        return CAP_ENOMEM;
    }
    for (size_t i = 0; !err && i < events; i++)
        err = parse_event(json_array_get(timeline, i), i, &out->events[out->event_count++], why, why_size);
    for (size_t i = 0; !err && i < ntracks; i++)
        err = parse_track(json_array_get(tracks, i), i, &out->tracks[out->track_count++], why, why_size);
    if (!err)
        err = parse_export(json_object_get(doc, "export"), out, why, why_size);
    if (err) {
        cap_composition_deinit(out);
        return err;
    }
    /* By time, events at one time in document order: an insertion sort (stable; the
     * composer saves timelines sorted, so this is one pass). */
    for (size_t i = 1; i < out->event_count; i++) {
        if (out->events[i].t_ms < out->events[i - 1].t_ms) {
            struct cap_composition_event e = out->events[i];
            size_t k = i;
            while (k > 0 && by_time(&out->events[k - 1], &e) > 0) {
                out->events[k] = out->events[k - 1];
                k--;
            }
            out->events[k] = e;
        }
    }
    return 0;
}

int cap_composition_load(const char *path, struct cap_composition *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    char *text = NULL;
    size_t len = 0;
    int err = cap_read_file(path, CAP_COMPOSITION_MAX_BYTES, &text, &len);
    if (err)
        return fail(why, why_size, err, "%s: cannot read: %s", path, cap_strerror(err));
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!doc)
        return fail(why, why_size, CAP_EFORMAT, "%s: not JSON (line %d: %s)", path, jerr.line, jerr.text);
    char inner[400] = "";
    err = cap_composition_parse(doc, out, inner, sizeof(inner));
    json_decref(doc);
    if (err)
        return fail(why, why_size, err, "%s: %s", path, inner);
    return 0;
}

void cap_composition_deinit(struct cap_composition *c)
{
    free(c->events);
    free(c->tracks);
    memset(c, 0, sizeof(*c));
}

json_t *cap_composition_to_json(const struct cap_composition *c)
{
    json_t *doc = json_object();
    if (c->recording_id[0])
        json_object_set_new(doc, "recording_id", json_string(c->recording_id));
    if (c->room_id[0])
        json_object_set_new(doc, "room_id", json_string(c->room_id));
    if (c->layout != CAP_LAYOUT_DEFAULT)
        json_object_set_new(doc, "layout", json_string(cap_layout_name(c->layout)));
    json_t *timeline = json_array();
    for (size_t i = 0; i < c->event_count; i++) {
        const struct cap_composition_event *e = &c->events[i];
        json_t *j = json_pack("{s:I}", "t", (json_int_t)e->t_ms);
        if (e->type == CAP_COMPOSITION_LAYOUT) {
            json_object_set_new(j, "type", json_string("layout"));
            json_object_set_new(j, "layout", json_string(cap_layout_name(e->layout)));
        } else if (e->type == CAP_COMPOSITION_PIN) {
            json_object_set_new(j, "type", json_string("pin"));
            json_object_set_new(j, "peer_id", json_string(e->peer_id));
        } else {
            json_object_set_new(j, "type", json_string("unpin"));
        }
        json_array_append_new(timeline, j);
    }
    json_object_set_new(doc, "timeline", timeline);
    json_t *tracks = json_array();
    for (size_t i = 0; i < c->track_count; i++) {
        const struct cap_composition_track *t = &c->tracks[i];
        json_t *j = json_object();
        if (t->peer_id[0])
            json_object_set_new(j, "peer_id", json_string(t->peer_id));
        if (t->track_id[0])
            json_object_set_new(j, "track_id", json_string(t->track_id));
        json_object_set_new(j, "muted", json_boolean(t->muted));
        if (t->hidden)
            json_object_set_new(j, "hidden", json_true());
        json_array_append_new(tracks, j);
    }
    json_object_set_new(doc, "tracks", tracks);
    json_t *ex = json_object();
    if (c->width) {
        char res[32];
        snprintf(res, sizeof(res), "%ux%u", c->width, c->height);
        json_object_set_new(ex, "resolution", json_string(res));
    }
    if (c->fps)
        json_object_set_new(ex, "fps", json_integer(c->fps));
    json_object_set_new(doc, "export", ex);
    return doc;
}

void cap_composition_at(const struct cap_composition *c, enum cap_layout initial, int64_t t_ms,
                        enum cap_layout *layout, const char **pinned_peer)
{
    enum cap_layout l = initial;
    const char *pin = "";
    for (size_t i = 0; c && i < c->event_count && c->events[i].t_ms <= t_ms; i++) {
        const struct cap_composition_event *e = &c->events[i];
        if (e->type == CAP_COMPOSITION_LAYOUT) {
            l = e->layout;
            pin = ""; /* choosing a layout lets go of a pin */
        } else if (e->type == CAP_COMPOSITION_PIN)
            pin = e->peer_id;
        else
            pin = "";
    }
    *layout = l;
    *pinned_peer = pin;
}

static const struct cap_composition_track *find_entry(const struct cap_composition *c, const char *peer_id,
                                                      const char *track_id)
{
    const struct cap_composition_track *peer_entry = NULL;
    for (size_t i = 0; c && i < c->track_count; i++) {
        const struct cap_composition_track *t = &c->tracks[i];
        if (t->track_id[0]) {
            if (track_id && strcmp(t->track_id, track_id) == 0)
                return t; /* a track's own entry wins over its peer's */
            continue;
        }
        if (peer_id && strcmp(t->peer_id, peer_id) == 0)
            peer_entry = t;
    }
    return peer_entry;
}

bool cap_composition_muted(const struct cap_composition *c, const char *peer_id, const char *track_id)
{
    const struct cap_composition_track *t = find_entry(c, peer_id, track_id);
    return t && t->muted;
}

bool cap_composition_hidden(const struct cap_composition *c, const char *peer_id, const char *track_id)
{
    const struct cap_composition_track *t = find_entry(c, peer_id, track_id);
    return t && t->hidden;
}
