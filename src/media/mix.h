/* Audio mixing for compose, as plain arithmetic on float samples (planar, one array per
 * channel, full scale 1.0): summing tracks, a limiter that keeps the sum from clipping
 * without pumping quiet passages, and levels for speaker detection. No libav here. */
#ifndef CAP_MEDIA_MIX_H
#define CAP_MEDIA_MIX_H

#include <stddef.h>
#include <stdint.h>

#define CAP_MIX_SILENCE_DB (-127.0f)

/* dst[i] += src[i] for n samples. */
void cap_mix_add(float *dst, const float *src, size_t n);

/* RMS level of a block over all channels, in dBFS; CAP_MIX_SILENCE_DB for silence. */
float cap_mix_rms_db(const float *const *planes, unsigned channels, size_t n);

/* Clip protection: a gain that drops at once when a block would pass the ceiling and
 * comes back smoothly (release time constant), ramped sample by sample so it never steps
 * while releasing; anything still past full scale is clamped. */
struct cap_limiter {
    float ceiling;      /* peak the output may reach, e.g. 0.98 */
    float gain;         /* current gain, 1.0 when idle */
    float release_per_sample; /* fraction of the distance to 1 recovered per sample */
    uint64_t limited_blocks;  /* blocks that needed gain below 1 */
    uint64_t clamped_samples; /* samples still clamped (only on overshoot inside a block) */
};

void cap_limiter_init(struct cap_limiter *l, unsigned sample_rate, float ceiling, float release_seconds);
void cap_limiter_run(struct cap_limiter *l, float *const *planes, unsigned channels, size_t n);

#endif
