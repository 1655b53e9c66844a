/* ingest/uploader over a local-folder store: sealed chunks go up and leave the spool, the
 * newest sealed chunk of a live recording stays, the chunk being written is never touched,
 * JSON files go up on every change and stay, and everything leaves once the recording is
 * over; a restart uploads nothing already there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capstan/error.h"
#include "ingest/uploader.h"
#include "track/writer.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/json.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct spool {
    char root[64];
    char data[128];
    char store[128];
    char rec[256];   /* DATA/rooms/r1/rec1 */
    char track[320]; /* its tracks/p-audio */
    char url[160];
};

static void spool_init(struct spool *s)
{
    strcpy(s->root, "/tmp/capstan-uploader-XXXXXX");
    assert_non_null(mkdtemp(s->root));
    snprintf(s->data, sizeof(s->data), "%s/data", s->root);
    snprintf(s->store, sizeof(s->store), "%s/store", s->root);
    snprintf(s->rec, sizeof(s->rec), "%s/rooms/r1/rec1", s->data);
    snprintf(s->track, sizeof(s->track), "%s/tracks/p-audio", s->rec);
    snprintf(s->url, sizeof(s->url), "file://%s", s->store);
    assert_int_equal(cap_mkdir_p(s->track), 0);
}

static void write_state(struct spool *s, const char *state)
{
    json_t *meta = json_pack("{s:{s:s, s:s}}", "recording", "recording_id", "rec1", "state", state);
    assert_int_equal(cap_json_write_file(s->rec, "metadata.json", meta), 0);
}

static bool exists(const char *dir, const char *name)
{
    char path[2 * PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[2 * PATH_MAX], *text = NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (cap_read_file(path, 1 << 24, &text, len) != 0)
        return NULL;
    return text;
}

/* Waits (up to 10 s) until nothing waits for the store and at least `uploads` went up. */
static struct cap_uploader_stats settle(struct cap_uploader *u, uint64_t uploads)
{
    struct cap_uploader_stats st;
    for (int i = 0; i < 1000; i++) {
        cap_uploader_get_stats(u, &st);
        if (st.backlog_files == 0 && st.uploads >= uploads)
            return st;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("uploader did not settle: backlog %llu, uploads %llu",
             (unsigned long long)st.backlog_files, (unsigned long long)st.uploads);
    return st;
}

static struct cap_track_writer *open_writer(struct spool *s)
{
    struct cap_track_writer_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = s->track;
    strcpy(cfg.info.track_id, "p-audio");
    strcpy(cfg.info.recording_id, "rec1");
    strcpy(cfg.info.room_id, "r1");
    strcpy(cfg.info.peer_id, "p");
    strcpy(cfg.info.kind, "audio");
    strcpy(cfg.info.codec, "opus");
    cfg.info.clock_rate = 48000;
    cfg.info.channels = 2;
    cfg.max_chunk_ns = CAP_NS_PER_SEC;
    struct cap_track_writer *w;
    assert_int_equal(cap_track_writer_open(&w, &cfg), 0);
    return w;
}

/* One RTP-looking record per 100 ms: a chunk per second of arrival time. */
static void append_seconds(struct cap_track_writer *w, int64_t from_s, int seconds)
{
    uint8_t pkt[40] = {0x80, 111};
    for (int i = 0; i < seconds * 10; i++) {
        pkt[3] = (uint8_t)i;
        int64_t t =
            (from_s * 10 + i) * (CAP_NS_PER_SEC / 10) + INT64_C(1700000000) * CAP_NS_PER_SEC;
        assert_int_equal(cap_track_writer_append(w, CAP_RECORD_RTP, 0, t, pkt, sizeof(pkt)), 0);
    }
    assert_int_equal(cap_track_writer_flush(w), 0);
}

static void test_sealed_chunks_go_up_and_the_newest_stays_while_live(void **state)
{
    (void)state;
    struct spool s;
    spool_init(&s);
    write_state(&s, "recording");
    struct cap_track_writer *w = open_writer(&s);
    append_seconds(w, 0, 3); /* chunks 1, 2 sealed; 3 being written */
    char store_track[PATH_MAX];
    snprintf(store_track, sizeof(store_track), "%s/rooms/r1/rec1/tracks/p-audio", s.store);
    size_t len1, len2;
    char *one = slurp(s.track, "00000001.ctrk", &len1),
         *two = slurp(s.track, "00000002.ctrk", &len2);
    assert_non_null(one);
    assert_non_null(two);

    struct cap_uploader_config cfg = {
        .data_dir = s.data, .storage_url = s.url, .scan_interval_ns = 20 * CAP_NS_PER_MS};
    struct cap_uploader *u;
    char why[256];
    assert_int_equal(cap_uploader_start(&u, &cfg, why, sizeof(why)), 0);
    struct cap_uploader_stats st = settle(u, 3); /* two chunks and metadata.json */
    assert_int_equal(st.deleted, 1);
    assert_false(exists(s.track, "00000001.ctrk")); /* older: gone from the spool */
    assert_true(exists(s.track, "00000002.ctrk"));  /* newest sealed, live: stays */
    assert_true(exists(s.track, "00000003.ctrk"));  /* being written: untouched */
    assert_false(exists(store_track, "00000003.ctrk"));
    size_t n;
    char *got = slurp(store_track, "00000001.ctrk", &n);
    assert_int_equal(n, len1);
    assert_memory_equal(got, one, n);
    free(got);
    got = slurp(store_track, "00000002.ctrk", &n);
    assert_int_equal(n, len2);
    assert_memory_equal(got, two, n);
    free(got);

    /* More arrives: chunk 3 seals, so chunk 2 may go now. */
    append_seconds(w, 3, 1);
    st = settle(u, 4);
    assert_false(exists(s.track, "00000002.ctrk"));
    assert_true(exists(s.track, "00000003.ctrk"));
    assert_true(exists(store_track, "00000003.ctrk"));

    /* The recording ends: the last chunks seal, the state changes, everything goes. */
    assert_int_equal(cap_track_writer_close(w), 0);
    write_state(&s, "stopped");
    cap_uploader_wake(u);
    for (int i = 0;
         i < 1000 && (exists(s.track, "00000003.ctrk") || exists(s.track, "00000004.ctrk")); i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_false(exists(s.track, "00000003.ctrk"));
    assert_false(exists(s.track, "00000004.ctrk"));
    assert_true(exists(store_track, "00000004.ctrk"));
    st = settle(u, 0);
    /* JSON stays local, and the store has its last version. */
    char store_rec[PATH_MAX];
    snprintf(store_rec, sizeof(store_rec), "%s/rooms/r1/rec1", s.store);
    size_t a, b;
    char *local = slurp(s.rec, "metadata.json", &a),
         *remote = slurp(store_rec, "metadata.json", &b);
    for (int i = 0; i < 500 && (!remote || b != a || memcmp(local, remote, a) != 0); i++) {
        free(remote);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        remote = slurp(store_rec, "metadata.json", &b);
    }
    assert_non_null(remote);
    assert_int_equal(a, b);
    assert_memory_equal(local, remote, a);
    assert_non_null(strstr(remote, "stopped"));
    free(local);
    free(remote);
    uint64_t uploads = st.uploads;
    cap_uploader_stop(u);

    /* A restart finds nothing new to send. */
    assert_int_equal(cap_uploader_start(&u, &cfg, why, sizeof(why)), 0);
    st = settle(u, 1); /* metadata.json, unknown to the new uploader, is checked once */
    cap_uploader_stop(u);
    assert_true(uploads > 4);
    free(one);
    free(two);
    cap_remove_tree(s.root);
}

static void test_unsealed_chunks_never_leave_even_when_the_recording_is_over(void **state)
{
    (void)state;
    struct spool s;
    spool_init(&s);
    write_state(&s, "interrupted");
    struct cap_track_writer *w = open_writer(&s);
    append_seconds(w, 0, 1); /* chunk 1 written, not sealed: the recorder died, say */
    struct cap_uploader_config cfg = {.data_dir = s.data,
                                      .storage_url = s.url,
                                      .quota_bytes = 1,
                                      .scan_interval_ns = 20 * CAP_NS_PER_MS};
    struct cap_uploader *u;
    char why[256];
    assert_int_equal(cap_uploader_start(&u, &cfg, why, sizeof(why)), 0);
    struct cap_uploader_stats st = settle(u, 1); /* metadata.json only */
    assert_int_equal(st.deleted, 0);
    assert_false(st.over_quota);
    assert_true(exists(s.track, "00000001.ctrk"));
    cap_uploader_stop(u);
    cap_track_writer_close(w);
    cap_remove_tree(s.root);
}

static void test_start_refuses_a_bad_store(void **state)
{
    (void)state;
    struct cap_uploader_config cfg = {.data_dir = "/tmp",
                                      .storage_url = "s3://Bad_Bucket?access_key=a&secret_key=b"};
    struct cap_uploader *u = NULL;
    char why[256] = "";
    assert_int_equal(cap_uploader_start(&u, &cfg, why, sizeof(why)), CAP_EINVAL);
    assert_non_null(strstr(why, "bad bucket name"));
    assert_null(u);
    cap_uploader_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sealed_chunks_go_up_and_the_newest_stays_while_live),
        cmocka_unit_test(test_unsealed_chunks_never_leave_even_when_the_recording_is_over),
        cmocka_unit_test(test_start_refuses_a_bad_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
