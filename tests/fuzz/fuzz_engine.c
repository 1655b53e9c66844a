/* Fuzz target: the engine fed arbitrary API bodies. The first byte picks a sequence of
 * operations, the rest is parsed as JSON (as the HTTP layer would) and handed to each of
 * them, so every field check sees hostile types and values. */
#include "engine/engine.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t fixed_clock(void)
{
    static int64_t t = 1700000000000000000;
    return t += 1000000;
}

static void counter_id(char *out, size_t size, const char *prefix)
{
    static unsigned long n;
    snprintf(out, size, "%s%lu", prefix, ++n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ops = data[0];
    json_t *body = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
    struct cap_engine e;
    cap_engine_init(&e, 1);
    e.now_ns = fixed_clock;
    e.random_id = counter_id;
    struct cap_effects fx;
    cap_effects_init(&fx);
    struct cap_engine_error err;
    json_t *producer = json_pack("{s:s, s:s, s:s, s:s, s:i}", "producer_id", "p1", "peer_id", "a",
                                 "kind", "video", "codec", "vp8", "ssrc", 5);
    /* A room that exists, with something to act on. */
    cap_engine_put_room(&e, "r", (ops & 1) ? body : producer, &fx, &err);
    cap_engine_peer_join(&e, "r", body, &fx, &err);
    cap_engine_producer_create(&e, "r", (ops & 2) ? body : producer, &fx, &err);
    struct cap_recording *rec = NULL;
    if (cap_engine_start_recording(&e, "r", body, &rec, &fx, &err) == 0 && rec) {
        cap_engine_producer_create(&e, "r", body, &fx, &err);
        cap_engine_producer_update(&e, "r", "p1", body, &fx, &err);
        cap_engine_active_speaker(&e, "r", body, &fx, &err);
        cap_engine_put_room(&e, "r", body, &fx, &err);
        if (ops & 4)
            cap_engine_pause_recording(&e, rec, true, &fx, &err);
        json_t *state = cap_recording_state_json(rec);
        struct cap_engine other;
        cap_engine_init(&other, 2);
        cap_engine_adopt_recording(&other, state);
        cap_engine_deinit(&other);
        json_decref(state);
        json_decref(cap_recording_metadata(&e, rec));
        json_decref(cap_recording_json(rec, "127.0.0.1"));
    }
    struct cap_room *room = cap_engine_find_room(&e, "r");
    if (room) {
        json_t *state = cap_room_json(room);
        struct cap_engine other;
        cap_engine_init(&other, 2);
        cap_engine_restore_room(&other, state);
        cap_engine_deinit(&other);
        json_decref(state);
    }
    if (ops & 8)
        cap_engine_peer_leave(&e, "r", "a", &fx, &err);
    cap_engine_close_room(&e, "r", &fx, &err);
    json_decref(producer);
    json_decref(body);
    cap_effects_deinit(&fx);
    cap_engine_deinit(&e);
    return 0;
}
