/* compose's plain parts: Composition State parsing and queries, the room over time from
 * timeline.json, the mixer's limiter and levels, active speaker hysteresis, placeholder
 * tiles with a peer's name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "capstan/error.h"
#include "media/compose_draw.h"
#include "media/composition.h"
#include "media/compose_room.h"
#include "media/mix.h"
#include "media/speaker.h"

#define MS 1000000LL

static int parse(const char *text, struct cap_composition *c, char *why, size_t size)
{
    json_error_t e;
    json_t *doc = json_loads(text, 0, &e);
    assert_non_null(doc);
    int err = cap_composition_parse(doc, c, why, size);
    json_decref(doc);
    return err;
}

/* ---- Composition State ---- */

static void test_reference_composition_parses(void **state)
{
    (void)state;
    struct cap_composition c;
    char why[256] = "";
    /* the example of preview-composition-export.md, as is */
    assert_int_equal(parse("{\"recording_id\": \"uuid\", \"room_id\": \"room-123\", \"layout\": \"speaker\","
                           " \"timeline\": [{\"t\": 0, \"type\": \"layout\", \"layout\": \"grid\"},"
                           "                {\"t\": 120000, \"type\": \"pin\", \"peer_id\": \"peer-7\"}],"
                           " \"tracks\": [{\"peer_id\": \"peer-1\", \"muted\": false}, {\"peer_id\": \"peer-2\", \"muted\": true}],"
                           " \"export\": {\"resolution\": \"1920x1080\", \"fps\": 30}}",
                           &c, why, sizeof(why)),
                     0);
    assert_string_equal(c.room_id, "room-123");
    assert_int_equal(c.layout, CAP_LAYOUT_SPEAKER);
    assert_int_equal(c.event_count, 2);
    assert_int_equal(c.width, 1920);
    assert_int_equal(c.height, 1080);
    assert_int_equal(c.fps, 30);
    assert_false(cap_composition_muted(&c, "peer-1", "peer-1-audio"));
    assert_true(cap_composition_muted(&c, "peer-2", "peer-2-audio"));
    assert_false(cap_composition_muted(&c, "peer-9", NULL));
    enum cap_layout l;
    const char *pin;
    cap_composition_at(&c, c.layout, 0, &l, &pin);
    assert_int_equal(l, CAP_LAYOUT_GRID);
    assert_string_equal(pin, "");
    cap_composition_at(&c, c.layout, 119999, &l, &pin);
    assert_string_equal(pin, "");
    cap_composition_at(&c, c.layout, 120000, &l, &pin);
    assert_string_equal(pin, "peer-7");
    /* round trip to the same shape */
    json_t *back = cap_composition_to_json(&c);
    assert_string_equal(json_string_value(json_object_get(json_object_get(back, "export"), "resolution")), "1920x1080");
    assert_int_equal(json_array_size(json_object_get(back, "timeline")), 2);
    json_decref(back);
    cap_composition_deinit(&c);
}

static void test_composition_events_sort_stably_and_layout_releases_pin(void **state)
{
    (void)state;
    struct cap_composition c;
    char why[256];
    assert_int_equal(parse("{\"timeline\": [{\"t\": 5000, \"type\": \"layout\", \"layout\": \"screenshare\"},"
                           " {\"t\": 1000, \"type\": \"pin\", \"peer_id\": \"a\"},"
                           " {\"t\": 1000, \"type\": \"pin\", \"peer_id\": \"b\"},"
                           " {\"t\": 3000, \"type\": \"pin\", \"peer_id\": null}]}",
                           &c, why, sizeof(why)),
                     0);
    enum cap_layout l;
    const char *pin;
    cap_composition_at(&c, CAP_LAYOUT_GRID, 1500, &l, &pin);
    assert_string_equal(pin, "b"); /* same time: document order */
    cap_composition_at(&c, CAP_LAYOUT_GRID, 3000, &l, &pin);
    assert_string_equal(pin, "");
    cap_composition_at(&c, CAP_LAYOUT_GRID, 6000, &l, &pin);
    assert_int_equal(l, CAP_LAYOUT_SCREENSHARE);
    cap_composition_deinit(&c);

    assert_int_equal(parse("{\"timeline\": [{\"t\": 100, \"type\": \"pin\", \"peer_id\": \"a\"},"
                           " {\"t\": 200, \"type\": \"layout\", \"layout\": \"speaker\"}]}", &c, why, sizeof(why)), 0);
    cap_composition_at(&c, CAP_LAYOUT_GRID, 300, &l, &pin);
    assert_int_equal(l, CAP_LAYOUT_SPEAKER);
    assert_string_equal(pin, "");
    cap_composition_deinit(&c);
}

static void test_bad_compositions_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        const char *field;
    } cases[] = {
        {"[]", "JSON object"},
        {"{\"layout\": \"mosaic\"}", "layout"},
        {"{\"timeline\": {}}", "timeline must be an array"},
        {"{\"timeline\": [{\"type\": \"pin\", \"peer_id\": \"a\"}]}", "timeline[0].t"},
        {"{\"timeline\": [{\"t\": -5, \"type\": \"unpin\"}]}", "timeline[0].t"},
        {"{\"timeline\": [{\"t\": 0, \"type\": \"unpin\"}, {\"t\": 1, \"type\": \"zoom\"}]}", "timeline[1].type"},
        {"{\"timeline\": [{\"t\": 0, \"type\": \"layout\"}]}", "timeline[0].layout"},
        {"{\"timeline\": [{\"t\": 0, \"type\": \"pin\", \"peer_id\": 7}]}", "timeline[0].peer_id"},
        {"{\"tracks\": [{\"muted\": true}]}", "tracks[0] needs a peer_id"},
        {"{\"tracks\": [{\"peer_id\": \"a\", \"muted\": \"yes\"}]}", "tracks[0].muted"},
        {"{\"export\": {\"resolution\": \"1920x1081\"}}", "export.resolution"},
        {"{\"export\": {\"resolution\": \"1920 by 1080\"}}", "export.resolution"},
        {"{\"export\": {\"fps\": 0}}", "export.fps"},
        {"{\"export\": {\"fps\": 30.5}}", "export.fps"},
        {"{\"recording_id\": 5}", "recording_id"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cap_composition c;
        char why[256] = "";
        int err = parse(cases[i].doc, &c, why, sizeof(why));
        if (err == 0)
            fail_msg("accepted %s", cases[i].doc);
        if (!strstr(why, cases[i].field))
            fail_msg("%s: message '%s' does not name '%s'", cases[i].doc, why, cases[i].field);
    }
}

static void test_track_entry_wins_over_its_peer(void **state)
{
    (void)state;
    struct cap_composition c;
    char why[256];
    assert_int_equal(parse("{\"tracks\": [{\"peer_id\": \"a\", \"muted\": true},"
                           " {\"track_id\": \"a-audio-2\", \"muted\": false, \"hidden\": true}]}", &c, why, sizeof(why)), 0);
    assert_true(cap_composition_muted(&c, "a", "a-audio"));
    assert_false(cap_composition_muted(&c, "a", "a-audio-2"));
    assert_true(cap_composition_hidden(&c, "a", "a-audio-2"));
    assert_false(cap_composition_hidden(&c, "a", NULL));
    assert_int_equal(cap_layout_parse("pinned", &(enum cap_layout){0}), 0);
    assert_string_equal(cap_layout_name(CAP_LAYOUT_DEFAULT), "grid");
    cap_composition_deinit(&c);
}

/* ---- the room over time ---- */

static void test_room_presence_and_track_life_follow_the_timeline(void **state)
{
    (void)state;
    json_t *timeline = json_loads(
        "{\"events\": ["
        " {\"t\": 0, \"type\": \"recording_started\"},"
        " {\"t\": 0, \"type\": \"peer_present\", \"peer_id\": \"alice\", \"display_name\": \"Alice A.\"},"
        " {\"t\": 0, \"type\": \"producer_started\", \"peer_id\": \"alice\", \"track_id\": \"alice-video\"},"
        " {\"t\": 2500, \"type\": \"peer_joined\", \"peer_id\": \"dave\", \"display_name\": \"Dave\"},"
        " {\"t\": 3000, \"type\": \"producer_paused\", \"peer_id\": \"alice\", \"track_id\": \"alice-video\"},"
        " {\"t\": 3500, \"type\": \"producer_resumed\", \"peer_id\": \"alice\", \"track_id\": \"alice-video\"},"
        " {\"t\": 4000, \"type\": \"recording_paused\"}, {\"t\": 4200, \"type\": \"recording_resumed\"},"
        " {\"t\": 4500, \"type\": \"producer_closed\", \"peer_id\": \"alice\", \"track_id\": \"alice-video\"},"
        " {\"t\": 4500, \"type\": \"peer_left\", \"peer_id\": \"alice\"},"
        " {\"t\": 5000, \"type\": \"producer_started\", \"peer_id\": \"sharescreen_bob\", \"track_id\": \"bob-screen\"},"
        " {\"t\": 9000, \"type\": \"recording_stopped\"}]}",
        0, NULL);
    json_t *meta = json_loads("{\"participants\": [{\"peer_id\": \"dave\", \"display_name\": \"Other\"},"
                              " {\"peer_id\": \"erin\", \"display_name\": \"Erin\"}]}", 0, NULL);
    struct cap_room_model m;
    assert_int_equal(cap_room_model_build(meta, timeline, &m), 0);
    struct cap_room_peer *alice = cap_room_find_peer(&m, "alice");
    assert_non_null(alice);
    assert_string_equal(alice->display_name, "Alice A.");
    assert_true(cap_switches_at(&alice->present, 0));
    assert_true(cap_switches_at(&alice->present, 4499 * MS));
    assert_false(cap_switches_at(&alice->present, 4500 * MS));
    struct cap_room_peer *dave = cap_room_find_peer(&m, "dave");
    assert_false(cap_switches_at(&dave->present, 2499 * MS));
    assert_true(cap_switches_at(&dave->present, 2500 * MS));
    assert_string_equal(dave->display_name, "Dave"); /* the timeline's name wins */
    assert_string_equal(cap_room_find_peer(&m, "erin")->display_name, "Erin");
    assert_false(cap_room_find_peer(&m, "erin")->has_presence);
    /* the screen's owner is bob, known from his producer */
    assert_non_null(cap_room_find_peer(&m, "bob"));
    assert_int_equal(cap_room_find_peer(&m, "bob")->first_seen_ns, 5000 * MS);
    struct cap_room_track *t = cap_room_find_track(&m, "alice-video");
    assert_true(cap_room_track_live(&m, t, 100 * MS));
    assert_false(cap_room_track_live(&m, t, 3200 * MS));     /* producer paused */
    assert_true(cap_room_track_live(&m, t, 3600 * MS));
    assert_false(cap_room_track_live(&m, t, 4100 * MS));     /* recording paused */
    assert_true(cap_room_track_live(&m, t, 4300 * MS));
    assert_false(cap_room_track_live(&m, t, 4500 * MS));     /* closed */
    assert_false(cap_room_track_live(&m, cap_room_find_track(&m, "bob-screen"), 4999 * MS));
    assert_true(cap_room_track_live(&m, NULL, 100 * MS));    /* a track the timeline never names */
    assert_int_equal(m.stopped_ns, 9000 * MS);
    assert_int_equal(cap_switches_next(&alice->present, 0), 4500 * MS);
    cap_room_model_deinit(&m);
    json_decref(meta);
    json_decref(timeline);
}

static void test_room_without_files_knows_nothing_and_says_so(void **state)
{
    (void)state;
    struct cap_room_model m;
    assert_int_equal(cap_room_model_build(NULL, NULL, &m), 0);
    assert_int_equal(m.peer_count, 0);
    assert_int_equal(m.stopped_ns, -1);
    assert_int_equal(cap_room_model_load("/nonexistent/recording", &m), 0);
    assert_string_equal(cap_room_owner_peer("sharescreen_x"), "x");
    assert_string_equal(cap_room_owner_peer("sharescreen_"), "sharescreen_");
    cap_room_model_deinit(&m);
}

/* ---- mixing ---- */

static void test_limiter_keeps_a_loud_sum_under_full_scale_and_lets_quiet_pass(void **state)
{
    (void)state;
    enum { N = 1024 };
    static float left[N], right[N];
    float *planes[2] = {left, right};
    struct cap_limiter l;
    cap_limiter_init(&l, 48000, 0.98f, 0.25f);
    /* four full-scale tones summed: peaks near 4.0 */
    for (int block = 0; block < 20; block++) {
        for (int i = 0; i < N; i++) {
            float v = 0;
            for (int k = 1; k <= 4; k++)
                v += sinf((float)(block * N + i) * 0.01f * (float)k);
            left[i] = right[i] = v;
        }
        cap_limiter_run(&l, planes, 2, N);
        for (int i = 0; i < N; i++)
            assert_true(fabsf(left[i]) <= 0.98f + 1e-6f && fabsf(right[i]) <= 0.98f + 1e-6f);
    }
    assert_true(l.limited_blocks > 0);
    assert_int_equal(l.clamped_samples, 0);
    /* quiet afterwards: the gain comes back to 1 within a second, untouched from then on */
    for (int block = 0; block < 100; block++) {
        for (int i = 0; i < N; i++)
            left[i] = right[i] = 0.1f;
        cap_limiter_run(&l, planes, 2, N);
    }
    assert_true(l.gain > 0.999f);
    for (int i = 0; i < N; i++)
        left[i] = 0.25f;
    cap_limiter_run(&l, planes, 1, N);
    assert_true(fabsf(left[N - 1] - 0.25f) < 0.001f);
}

static void test_levels_and_sums(void **state)
{
    (void)state;
    static float a[480], b[480];
    for (int i = 0; i < 480; i++) {
        a[i] = 0.5f * sinf(2 * 3.14159265f * 1000 * (float)i / 48000);
        b[i] = 0;
    }
    const float *one[1] = {a};
    assert_true(fabsf(cap_mix_rms_db(one, 1, 480) - (-9.03f)) < 0.1f); /* a sine's RMS is peak - 3 dB */
    const float *silent[1] = {b};
    assert_true(cap_mix_rms_db(silent, 1, 480) == CAP_MIX_SILENCE_DB);
    assert_true(cap_mix_rms_db(one, 0, 480) == CAP_MIX_SILENCE_DB);
    cap_mix_add(b, a, 480);
    cap_mix_add(b, a, 480);
    assert_true(fabsf(b[100] - 2 * a[100]) < 1e-6f);
}

/* ---- the speaker ---- */

static int feed(struct cap_speaker_detector *d, int64_t *t, int ms, float l0, float l1, float l2)
{
    int speaker = -1;
    for (int i = 0; i < ms / 20; i++) {
        *t += 20 * MS;
        float levels[3] = {l0, l1, l2};
        speaker = cap_speaker_update(d, *t, levels);
    }
    return speaker;
}

static void test_speaker_needs_a_margin_and_a_hold_to_switch(void **state)
{
    (void)state;
    struct cap_speaker_detector d;
    cap_speaker_init(&d, 3, NULL);
    int64_t t = 0;
    const float quiet = CAP_MIX_SILENCE_DB;
    assert_int_equal(feed(&d, &t, 200, quiet, quiet, quiet), -1);       /* nobody yet */
    assert_int_equal(feed(&d, &t, 200, -20, quiet, quiet), -1);         /* not held long enough */
    assert_int_equal(feed(&d, &t, 400, -20, quiet, quiet), 0);
    /* peer 1 slightly louder (3 dB, below the margin): no switch, however long */
    assert_int_equal(feed(&d, &t, 3000, -20, -17, quiet), 0);
    /* peer 2 much louder: switches after the hold, not before */
    assert_int_equal(feed(&d, &t, 300, -20, -17, -5), 0);
    assert_int_equal(feed(&d, &t, 300, -20, -17, -5), 2);
    /* a short burst from peer 0 (a cough) does not take the tile */
    assert_int_equal(feed(&d, &t, 200, 0, -60, -5), 2);
    assert_int_equal(feed(&d, &t, 1000, quiet, quiet, -5), 2);
    /* the speaker goes silent, someone else talks: switch */
    assert_int_equal(feed(&d, &t, 2000, quiet, -20, quiet), 1);
    assert_int_equal(d.switches, 3);
}

static void test_speaker_keeps_the_tile_for_the_dwell_time(void **state)
{
    (void)state;
    struct cap_speaker_params p = {.threshold_db = -50, .margin_db = 6, .hold_ns = 100 * MS, .dwell_ns = 2000 * MS,
                                   .attack_s = 0.01f, .decay_s = 0.01f};
    struct cap_speaker_detector d;
    cap_speaker_init(&d, 3, &p);
    int64_t t = 0;
    assert_int_equal(feed(&d, &t, 300, -10, CAP_MIX_SILENCE_DB, CAP_MIX_SILENCE_DB), 0);
    int64_t switched = d.switched_ns;
    /* peer 1 takes over at once in level, but the tile waits for the dwell */
    assert_int_equal(feed(&d, &t, 1000, CAP_MIX_SILENCE_DB, -10, CAP_MIX_SILENCE_DB), 0);
    assert_int_equal(feed(&d, &t, 1200, CAP_MIX_SILENCE_DB, -10, CAP_MIX_SILENCE_DB), 1);
    assert_true(d.switched_ns - switched >= 2000 * MS);
}

/* ---- placeholder tiles ---- */

struct ink {
    int count, x0, x1, y0, y1; /* bright luma pixels and their bounding box */
};

static struct ink ink_of(const AVFrame *f)
{
    struct ink k = {0, f->width, -1, f->height, -1};
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++)
            if (f->data[0][(size_t)y * f->linesize[0] + x] > 160) {
                k.count++;
                k.x0 = x < k.x0 ? x : k.x0;
                k.x1 = x > k.x1 ? x : k.x1;
                k.y0 = y < k.y0 ? y : k.y0;
                k.y1 = y > k.y1 ? y : k.y1;
            }
    return k;
}

static void assert_plain_grey_at_edges(const AVFrame *f)
{
    for (int x = 0; x < f->width; x++) {
        assert_int_equal(f->data[0][x], CAP_PLACEHOLDER_Y);
        assert_int_equal(f->data[0][(size_t)(f->height - 1) * f->linesize[0] + x], CAP_PLACEHOLDER_Y);
    }
    for (int y = 0; y < f->height / 2; y++)
        for (int x = 0; x < f->width / 2; x++) {
            assert_int_equal(f->data[1][(size_t)y * f->linesize[1] + x], CAP_PLACEHOLDER_U);
            assert_int_equal(f->data[2][(size_t)y * f->linesize[2] + x], CAP_PLACEHOLDER_V);
        }
}

static void test_placeholder_carries_the_name_centred(void **state)
{
    (void)state;
    AVFrame *f = NULL;
    bool with_text = false;
    assert_int_equal(cap_placeholder_render(&f, 640, 360, "Dave", &with_text), 0);
    assert_true(with_text);
    assert_int_equal(f->width, 640);
    assert_int_equal(f->height, 360);
    assert_plain_grey_at_edges(f);
    struct ink k = ink_of(f);
    assert_true(k.count > 200);
    /* centred to a few pixels both ways, about an eighth of the height tall */
    assert_true(abs((k.x0 + k.x1) - 640) <= 8);
    assert_true(abs((k.y0 + k.y1) - 360) <= 16);
    assert_true(k.y1 - k.y0 >= 25 && k.y1 - k.y0 <= 70);
    av_frame_free(&f);

    /* a longer name gets more ink, in a smaller size that still fits the tile */
    assert_int_equal(cap_placeholder_render(&f, 320, 180, "Dave from the Thursday design review", &with_text), 0);
    assert_true(with_text);
    k = ink_of(f);
    assert_true(k.count > 100);
    assert_true(k.x0 > 0 && k.x1 < 319);
    av_frame_free(&f);

    /* UTF-8 and bytes that are not: drawn, never read past the end */
    const char *odd[] = {"Zo\xc3\xab \xe6\x9d\x8e", "\xff\xfe\xc3", "\xe2\x82", "a\xf0\x9f\x98\x80" "b"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        assert_int_equal(cap_placeholder_render(&f, 64, 36, odd[i], &with_text), 0);
        assert_plain_grey_at_edges(f);
        av_frame_free(&f);
    }

    /* no name: the plain tile */
    assert_int_equal(cap_placeholder_render(&f, 64, 36, "", &with_text), 0);
    assert_false(with_text);
    assert_int_equal(ink_of(f).count, 0);
    av_frame_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_composition_parses),
        cmocka_unit_test(test_composition_events_sort_stably_and_layout_releases_pin),
        cmocka_unit_test(test_bad_compositions_name_the_field),
        cmocka_unit_test(test_track_entry_wins_over_its_peer),
        cmocka_unit_test(test_room_presence_and_track_life_follow_the_timeline),
        cmocka_unit_test(test_room_without_files_knows_nothing_and_says_so),
        cmocka_unit_test(test_limiter_keeps_a_loud_sum_under_full_scale_and_lets_quiet_pass),
        cmocka_unit_test(test_levels_and_sums),
        cmocka_unit_test(test_speaker_needs_a_margin_and_a_hold_to_switch),
        cmocka_unit_test(test_speaker_keeps_the_tile_for_the_dwell_time),
        cmocka_unit_test(test_placeholder_carries_the_name_centred),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
