/* Active speaker detection for compose's speaker layout: per-peer audio levels in (from
 * the RFC 6464 audio-level header extension, or decoded energy), one current speaker out,
 * with hysteresis so the big tile does not flicker: levels are smoothed, a challenger must
 * be louder than the current speaker by a margin (or the current one silent) for a hold
 * time, and a speaker keeps the tile for a minimum dwell. Plain state, no I/O. */
#ifndef CAP_MEDIA_SPEAKER_H
#define CAP_MEDIA_SPEAKER_H

#include <stddef.h>
#include <stdint.h>

#define CAP_SPEAKER_MAX_PEERS 256

struct cap_speaker_params {
    float threshold_db;   /* below this (smoothed) a peer is not speaking; default -50 */
    float margin_db;      /* a challenger must be this much louder; default 6 */
    int64_t hold_ns;      /* ... for this long; default 400 ms */
    int64_t dwell_ns;     /* a new speaker keeps the tile at least this long; default 1 s */
    float attack_s;       /* smoothing time constant when the level rises; default 0.05 */
    float decay_s;        /* ... when it falls; default 0.4 */
};

struct cap_speaker_detector {
    struct cap_speaker_params p;
    size_t count;
    float smoothed[CAP_SPEAKER_MAX_PEERS];
    int current;          /* -1 until someone speaks */
    int candidate;
    int64_t candidate_since_ns;
    int64_t switched_ns;
    int64_t last_ns;
    uint64_t switches;
};

/* params may be NULL for the defaults. */
void cap_speaker_init(struct cap_speaker_detector *d, size_t peers, const struct cap_speaker_params *params);
/* One window ending at t_ns: levels[i] in dB (CAP_MIX_SILENCE_DB for silent or absent).
 * Returns the current speaker (index) or -1. */
int cap_speaker_update(struct cap_speaker_detector *d, int64_t t_ns, const float *levels);

#endif
