/* Active speaker detection (speaker.h). */
#include "media/speaker.h"

#include "media/mix.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

void cap_speaker_init(struct cap_speaker_detector *d, size_t peers, const struct cap_speaker_params *params)
{
    memset(d, 0, sizeof(*d));
    d->p = params ? *params
                  : (struct cap_speaker_params){.threshold_db = -50, .margin_db = 6, .hold_ns = 400000000,
                                                .dwell_ns = 1000000000, .attack_s = 0.05f, .decay_s = 0.4f};
    d->count = peers < CAP_SPEAKER_MAX_PEERS ? peers : CAP_SPEAKER_MAX_PEERS;
    for (size_t i = 0; i < CAP_SPEAKER_MAX_PEERS; i++)
        d->smoothed[i] = CAP_MIX_SILENCE_DB;
    d->current = -1;
    d->candidate = -1;
    d->last_ns = -1;
}

int cap_speaker_update(struct cap_speaker_detector *d, int64_t t_ns, const float *levels)
{
    double dt = d->last_ns < 0 || t_ns <= d->last_ns ? 0.02 : (double)(t_ns - d->last_ns) / 1e9;
    d->last_ns = t_ns;
    int loudest = -1;
    for (size_t i = 0; i < d->count; i++) {
        float tau = levels[i] > d->smoothed[i] ? d->p.attack_s : d->p.decay_s;
        float a = tau > 0 ? (float)(1.0 - exp(-dt / tau)) : 1.0f;
        d->smoothed[i] += (levels[i] - d->smoothed[i]) * a;
        if (d->smoothed[i] >= d->p.threshold_db && (loudest < 0 || d->smoothed[i] > d->smoothed[loudest]))
            loudest = (int)i;
    }
    int challenger = -1;
    if (loudest >= 0 && loudest != d->current) {
        bool current_silent = d->current < 0 || d->smoothed[d->current] < d->p.threshold_db;
        if (current_silent || d->smoothed[loudest] >= d->smoothed[d->current] + d->p.margin_db)
            challenger = loudest;
    }
    if (challenger < 0) {
        d->candidate = -1;
        return d->current;
    }
    if (challenger != d->candidate) {
        d->candidate = challenger;
        d->candidate_since_ns = t_ns;
    }
    bool held = t_ns - d->candidate_since_ns >= d->p.hold_ns;
    bool dwelt = d->current < 0 || t_ns - d->switched_ns >= d->p.dwell_ns;
    if (held && dwelt) {
        d->current = challenger;
        d->switched_ns = t_ns;
        d->candidate = -1;
        d->switches++;
    }
    return d->current;
}
