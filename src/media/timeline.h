/* One timeline for a recording: every track's RTP time mapped to recording time (ns after
 * the recording's time zero). With RTCP Sender Reports, RTP time maps to the sender's NTP
 * clock (a line fitted through every SR, so drift is followed), and the sender's clock to
 * ours by the smallest arrival-minus-NTP seen (its offset plus the least network delay);
 * tracks of one sender (one CNAME) share that offset, so their relative sync is the
 * sender's own. Without SRs, RTP time maps to arrival time along a line fitted to the
 * earliest arrivals (the drift estimate). A timestamp jump (sender restart, SSRC change)
 * starts a new segment anchored at its arrival. Mapped times never move earlier than a
 * gap's end: a gap stays a gap. */
#ifndef CAP_MEDIA_TIMELINE_H
#define CAP_MEDIA_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A track's mapping, built from one pass over its records. */
struct cap_track_clock;

struct cap_track_clock_config {
    uint32_t clock_rate;
    int64_t time_zero_ns;       /* recording time zero, wall clock ns */
};

int cap_track_clock_new(struct cap_track_clock **out, const struct cap_track_clock_config *cfg);
void cap_track_clock_free(struct cap_track_clock *c);

/* Pass 1: feed every RTP packet (timestamp, arrival) and every SR (ntp, rtp_ts, arrival)
 * in arrival order, with the SR sender's CNAME if its compound carried one. */
void cap_track_clock_add_rtp(struct cap_track_clock *c, uint32_t ssrc, uint32_t rtp_ts, int64_t arrival_ns);
void cap_track_clock_add_sr(struct cap_track_clock *c, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                            int64_t arrival_ns, const char *cname);
/* Ends pass 1: fits the lines. */
void cap_track_clock_finish(struct cap_track_clock *c);

/* Sync across tracks: the CNAME whose SRs this track had ("" if none), and its sender
 * offset (our wall clock minus the sender's NTP clock, least delay included). A recording
 * makes all tracks of one CNAME use one offset: the smallest any of them saw. */
const char *cap_track_clock_cname(const struct cap_track_clock *c);
bool cap_track_clock_has_sr(const struct cap_track_clock *c);
int64_t cap_track_clock_sender_offset(const struct cap_track_clock *c);
void cap_track_clock_set_sender_offset(struct cap_track_clock *c, int64_t offset_ns);

/* Pass 2: recording time (ns after time zero) of an RTP timestamp, in the order the
 * frames come (timestamps unwrapped internally); *new_segment is set when a timestamp
 * jump started a new segment. */
int64_t cap_track_clock_map(struct cap_track_clock *c, uint32_t ssrc, uint32_t rtp_ts,
                            int64_t arrival_ns, bool *new_segment);

struct cap_track_clock_report {
    bool used_sr;
    unsigned sender_reports;
    unsigned segments;
    double drift_ppm;           /* RTP clock against our clock (SR line or arrival line) */
    int64_t offset_ns;          /* where the first frame lands, ns after time zero */
};
void cap_track_clock_report(const struct cap_track_clock *c, struct cap_track_clock_report *out);

#endif
