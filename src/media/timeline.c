/* Track clocks (timeline.h). Pass 1 cuts a track into segments wherever RTP time and
 * arrival time disagree by more than a second (a restart, a new SSRC, a pause the RTP
 * clock did not count), keeps per segment the earliest arrival per second of RTP time
 * (the lower envelope, where network delay is least) and the segment's Sender Reports,
 * and fits lines through them. Pass 2 maps each frame through its segment's line. */
#include "media/timeline.h"

#include "capstan/error.h"
#include "util/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENT_BREAK_NS (1000 * CAP_NS_PER_MS)
#define MAX_SEGMENTS 4096
#define MAX_SR_PER_SEGMENT 8192

struct bucket {
    int64_t t_ns;        /* RTP time of the earliest-arriving packet in this second */
    int64_t offset_ns;   /* its arrival minus its RTP time */
};

struct sr_point {
    int64_t t_ns;        /* RTP time (segment-relative, ns) */
    int64_t ntp_ns;      /* sender's NTP time, as Unix ns */
    int64_t arrival_ns;
};

struct segment {
    uint32_t ssrc;
    uint32_t first_ts;
    int64_t first_arrival;
    int64_t last_ext;            /* unwrapped ts of the last packet seen (pass 1) */
    int64_t last_t_ns, last_arrival;
    struct bucket *buckets;
    size_t bucket_count, bucket_cap;
    struct sr_point *srs;
    size_t sr_count, sr_cap;
    /* fitted: local = t + a + b * t (arrival line) or ntp line + offset */
    double a_ns, b;              /* arrival line: offset(t) = a + b t */
    bool have_sr_line;
    double sr_a_ns, sr_b;        /* ntp(t) = sr_a + (1 + sr_b) t */
    int64_t sr_offset_ns;        /* min(arrival - ntp) */
    /* pass 2 */
    int64_t map_ext;
    uint32_t map_last_ts;
    bool map_started;
};

struct cap_track_clock {
    struct cap_track_clock_config cfg;
    struct segment *segs;
    size_t seg_count, seg_cap;
    char cname[256];
    bool has_sr;
    int64_t sender_offset;
    bool sender_offset_set;
    unsigned sr_total;
    /* pass 2 */
    size_t map_seg;
    int64_t last_out;
};

int cap_track_clock_new(struct cap_track_clock **out, const struct cap_track_clock_config *cfg)
{
    if (!cfg->clock_rate)
        return CAP_EINVAL;
    struct cap_track_clock *c = calloc(1, sizeof(*c));
    if (!c)
        return CAP_ENOMEM;
    c->cfg = *cfg;
    c->last_out = INT64_MIN;
    *out = c;
    return 0;
}

void cap_track_clock_free(struct cap_track_clock *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->seg_count; i++) {
        free(c->segs[i].buckets);
        free(c->segs[i].srs);
    }
    free(c->segs);
    free(c);
}

static int64_t ticks_to_ns(const struct cap_track_clock *c, int64_t ticks)
{
    return (int64_t)((__int128)ticks * CAP_NS_PER_SEC / c->cfg.clock_rate);
}

static struct segment *new_segment(struct cap_track_clock *c, uint32_t ssrc, uint32_t ts, int64_t arrival)
{
    if (c->seg_count == MAX_SEGMENTS)
        return &c->segs[c->seg_count - 1];
    if (c->seg_count == c->seg_cap) {
        size_t cap = c->seg_cap ? c->seg_cap * 2 : 4;
        struct segment *grown = realloc(c->segs, cap * sizeof(*grown));
        if (!grown)
            return c->seg_count ? &c->segs[c->seg_count - 1] : NULL;
        c->segs = grown;
        c->seg_cap = cap;
    }
    struct segment *s = &c->segs[c->seg_count++];
    memset(s, 0, sizeof(*s));
    s->ssrc = ssrc;
    s->first_ts = ts;
    s->first_arrival = arrival;
    s->last_arrival = arrival;
    return s;
}

void cap_track_clock_add_rtp(struct cap_track_clock *c, uint32_t ssrc, uint32_t rtp_ts, int64_t arrival_ns)
{
    struct segment *s = c->seg_count ? &c->segs[c->seg_count - 1] : NULL;
    int64_t ext = 0;
    if (s && s->ssrc == ssrc) {
        /* Unwrap against the last timestamp, then check RTP time against arrival. */
        uint32_t last_raw = (uint32_t)((uint64_t)s->last_ext + s->first_ts);
        ext = s->last_ext + (int32_t)(rtp_ts - last_raw);
        int64_t t = ticks_to_ns(c, ext);
        int64_t drift = (arrival_ns - s->last_arrival) - (t - s->last_t_ns);
        if (drift > SEGMENT_BREAK_NS || drift < -SEGMENT_BREAK_NS)
            s = NULL;
    } else {
        s = NULL;
    }
    if (!s) {
        s = new_segment(c, ssrc, rtp_ts, arrival_ns);
        if (!s)
            return;
        ext = 0;
    }
    int64_t t = ticks_to_ns(c, ext);
    if (ext > s->last_ext || (s->bucket_count == 0 && ext == 0)) {
        s->last_ext = ext;
        s->last_t_ns = t;
    }
    s->last_arrival = arrival_ns;
    int64_t offset = arrival_ns - t;
    int64_t second = t / CAP_NS_PER_SEC;
    struct bucket *last = s->bucket_count ? &s->buckets[s->bucket_count - 1] : NULL;
    if (last && last->t_ns / CAP_NS_PER_SEC == second) {
        if (offset < last->offset_ns) {
            last->offset_ns = offset;
            last->t_ns = t;
        }
        return;
    }
    if (s->bucket_count == s->bucket_cap) {
        size_t cap = s->bucket_cap ? s->bucket_cap * 2 : 64;
        struct bucket *grown = realloc(s->buckets, cap * sizeof(*grown));
        if (!grown)
            return;
        s->buckets = grown;
        s->bucket_cap = cap;
    }
    s->buckets[s->bucket_count++] = (struct bucket){t, offset};
}

void cap_track_clock_add_sr(struct cap_track_clock *c, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                            int64_t arrival_ns, const char *cname)
{
    /* The SR belongs to the latest segment of its SSRC. */
    struct segment *s = NULL;
    for (size_t i = c->seg_count; i-- > 0;) {
        if (c->segs[i].ssrc == ssrc) {
            s = &c->segs[i];
            break;
        }
    }
    if (!s || s->sr_count == MAX_SR_PER_SEGMENT)
        return;
    if (s->sr_count == s->sr_cap) {
        size_t cap = s->sr_cap ? s->sr_cap * 2 : 16;
        struct sr_point *grown = realloc(s->srs, cap * sizeof(*grown));
        if (!grown)
            return;
        s->srs = grown;
        s->sr_cap = cap;
    }
    uint32_t last_raw = (uint32_t)((uint64_t)s->last_ext + s->first_ts);
    int64_t ext = s->last_ext + (int32_t)(rtp_ts - last_raw);
    s->srs[s->sr_count++] = (struct sr_point){ticks_to_ns(c, ext), cap_clock_ntp_to_unix_ns(ntp), arrival_ns};
    c->has_sr = true;
    c->sr_total++;
    if (cname && *cname && !c->cname[0])
        snprintf(c->cname, sizeof(c->cname), "%s", cname);
}

/* Least squares y = a + b x over n points (x, y in ns). */
static void fit(const double *x, const double *y, size_t n, double *a, double *b)
{
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    *b = sxx > 0 ? sxy / sxx : 0;
    *a = my - *b * mx;
}

static void finish_segment(struct segment *s)
{
    size_t n = s->bucket_count;
    if (n == 0)
        return;
    /* Arrival line through the lower envelope. With few seconds, the minimum alone. */
    int64_t min_offset = s->buckets[0].offset_ns;
    for (size_t i = 1; i < n; i++)
        if (s->buckets[i].offset_ns < min_offset)
            min_offset = s->buckets[i].offset_ns;
    s->a_ns = (double)min_offset;
    s->b = 0;
    if (n >= 10) {
        double *x = malloc(n * sizeof(double)), *y = malloc(n * sizeof(double));
        if (x && y) {
            for (size_t i = 0; i < n; i++) {
                x[i] = (double)s->buckets[i].t_ns;
                y[i] = (double)s->buckets[i].offset_ns;
            }
            double a, b;
            fit(x, y, n, &a, &b);
            /* Shift the line down onto the envelope: no point may sit below it. */
            double lowest = 0;
            for (size_t i = 0; i < n; i++) {
                double d = y[i] - (a + b * x[i]);
                if (i == 0 || d < lowest)
                    lowest = d;
            }
            /* A drift beyond 1000 ppm is not a clock: keep the flat estimate. */
            if (fabs(b) < 1e-3) {
                s->a_ns = a + lowest;
                s->b = b;
            }
        }
        free(x);
        free(y);
    }
    if (s->sr_count) {
        int64_t best = INT64_MAX;
        for (size_t i = 0; i < s->sr_count; i++)
            if (s->srs[i].arrival_ns - s->srs[i].ntp_ns < best)
                best = s->srs[i].arrival_ns - s->srs[i].ntp_ns;
        s->sr_offset_ns = best;
        double first_t = (double)s->srs[0].t_ns, last_t = (double)s->srs[s->sr_count - 1].t_ns;
        s->sr_b = 0;
        s->sr_a_ns = (double)s->srs[0].ntp_ns - first_t;
        if (s->sr_count >= 2 && last_t - first_t >= 1e9) {
            double *x = malloc(s->sr_count * sizeof(double)), *y = malloc(s->sr_count * sizeof(double));
            if (x && y) {
                for (size_t i = 0; i < s->sr_count; i++) {
                    x[i] = (double)s->srs[i].t_ns;
                    y[i] = (double)s->srs[i].ntp_ns - x[i];
                }
                double a, b;
                fit(x, y, s->sr_count, &a, &b);
                if (fabs(b) < 1e-3) {
                    s->sr_a_ns = a;
                    s->sr_b = b;
                }
            }
            free(x);
            free(y);
        }
        s->have_sr_line = true;
    }
}

void cap_track_clock_finish(struct cap_track_clock *c)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < c->seg_count; i++) {
        finish_segment(&c->segs[i]);
        if (c->segs[i].have_sr_line && c->segs[i].sr_offset_ns < best)
            best = c->segs[i].sr_offset_ns;
    }
    if (best != INT64_MAX && !c->sender_offset_set)
        c->sender_offset = best;
}

const char *cap_track_clock_cname(const struct cap_track_clock *c)
{
    return c->cname;
}

bool cap_track_clock_has_sr(const struct cap_track_clock *c)
{
    return c->has_sr;
}

int64_t cap_track_clock_sender_offset(const struct cap_track_clock *c)
{
    return c->sender_offset;
}

void cap_track_clock_set_sender_offset(struct cap_track_clock *c, int64_t offset_ns)
{
    c->sender_offset = offset_ns;
    c->sender_offset_set = true;
}

static int64_t local_time(const struct cap_track_clock *c, const struct segment *s, int64_t t)
{
    if (s->have_sr_line)
        return (int64_t)(s->sr_a_ns + (double)t * (1.0 + s->sr_b)) + c->sender_offset;
    return (int64_t)((double)t + s->a_ns + s->b * (double)t);
}

int64_t cap_track_clock_map(struct cap_track_clock *c, uint32_t ssrc, uint32_t rtp_ts,
                            int64_t arrival_ns, bool *new_segment)
{
    *new_segment = false;
    if (!c->seg_count)
        return arrival_ns - c->cfg.time_zero_ns;
    /* Move to the segment this frame belongs to: the next one starts with its SSRC and
     * first timestamp, at or after its first arrival. */
    while (c->map_seg + 1 < c->seg_count) {
        const struct segment *next = &c->segs[c->map_seg + 1];
        if (arrival_ns >= next->first_arrival && (next->ssrc != c->segs[c->map_seg].ssrc || ssrc == next->ssrc)) {
            c->map_seg++;
            *new_segment = true;
        } else {
            break;
        }
    }
    struct segment *s = &c->segs[c->map_seg];
    if (!s->map_started) {
        s->map_started = true;
        s->map_ext = (int32_t)(rtp_ts - s->first_ts);
    } else {
        s->map_ext += (int32_t)(rtp_ts - s->map_last_ts);
    }
    s->map_last_ts = rtp_ts;
    int64_t t = ticks_to_ns(c, s->map_ext);
    int64_t out = local_time(c, s, t) - c->cfg.time_zero_ns;
    /* After a break the new segment never starts before what came out already. */
    if (*new_segment && out < c->last_out)
        out = c->last_out;
    if (out > c->last_out)
        c->last_out = out;
    return out;
}

void cap_track_clock_report(const struct cap_track_clock *c, struct cap_track_clock_report *out)
{
    memset(out, 0, sizeof(*out));
    out->used_sr = c->has_sr;
    out->sender_reports = c->sr_total;
    out->segments = (unsigned)c->seg_count;
    if (c->seg_count) {
        const struct segment *s = &c->segs[0];
        out->drift_ppm = (s->have_sr_line ? s->sr_b : s->b) * 1e6;
        out->offset_ns = local_time(c, s, 0) - c->cfg.time_zero_ns;
    }
}
