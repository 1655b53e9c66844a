/* Audio mixing arithmetic (mix.h). */
#include "media/mix.h"

#include <math.h>

void cap_mix_add(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

float cap_mix_rms_db(const float *const *planes, unsigned channels, size_t n)
{
    if (!channels || !n)
        return CAP_MIX_SILENCE_DB;
    double sum = 0;
    for (unsigned c = 0; c < channels; c++)
        for (size_t i = 0; i < n; i++)
            sum += (double)planes[c][i] * planes[c][i];
    double mean = sum / ((double)n * channels);
    if (mean <= 1e-13)
        return CAP_MIX_SILENCE_DB;
    float db = (float)(10.0 * log10(mean));
    return db < CAP_MIX_SILENCE_DB ? CAP_MIX_SILENCE_DB : db;
}

void cap_limiter_init(struct cap_limiter *l, unsigned sample_rate, float ceiling, float release_seconds)
{
    l->ceiling = ceiling > 0 && ceiling <= 1 ? ceiling : 0.98f;
    l->gain = 1.0f;
    double samples = (double)(sample_rate ? sample_rate : 48000) * (release_seconds > 0 ? release_seconds : 0.25);
    l->release_per_sample = (float)(1.0 - exp(-1.0 / samples));
    l->limited_blocks = 0;
    l->clamped_samples = 0;
}

void cap_limiter_run(struct cap_limiter *l, float *const *planes, unsigned channels, size_t n)
{
    float peak = 0;
    for (unsigned c = 0; c < channels; c++)
        for (size_t i = 0; i < n; i++) {
            float a = fabsf(planes[c][i]);
            if (a > peak)
                peak = a;
        }
    float needed = peak > l->ceiling ? l->ceiling / peak : 1.0f;
    if (needed < l->gain)
        l->gain = needed; /* attack at once: the whole block at the lower gain */
    if (l->gain >= 1.0f && peak <= 1.0f)
        return;
    if (l->gain < 1.0f)
        l->limited_blocks++;
    /* Release toward 1, but never above what this block needs. */
    for (size_t i = 0; i < n; i++) {
        float g = l->gain;
        for (unsigned c = 0; c < channels; c++) {
            float v = planes[c][i] * g;
            if (v > 1.0f || v < -1.0f) {
                v = v > 0 ? 1.0f : -1.0f;
                l->clamped_samples++;
            }
            planes[c][i] = v;
        }
        float next = g + (1.0f - g) * l->release_per_sample;
        l->gain = next < needed ? next : needed;
    }
}
