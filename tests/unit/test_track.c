/* Raw track chunks: write/read round trips, rotation, seek, repair of a torn tail at every
 * byte offset, checksum detection of flipped bits, and rewinding a track reader (which
 * checksums again whatever it cannot know to be unchanged). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capstan/track.h"
#include "track/chunk_format.h"
#include "track/writer.h"
#include "util/fs.h"

#define T0 INT64_C(1700000000000000000)
#define MS INT64_C(1000000)

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/capstan-test-track-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void fill_info(struct cap_track_info *info)
{
    memset(info, 0, sizeof(*info));
    strcpy(info->track_id, "peer1-video");
    strcpy(info->recording_id, "rec1");
    strcpy(info->room_id, "room1");
    strcpy(info->peer_id, "peer1");
    strcpy(info->kind, "video");
    strcpy(info->codec, "vp8");
    strcpy(info->fmtp, "max-fs=12288;max-fr=60");
    info->clock_rate = 90000;
    info->ssrc = 0xdeadbeef;
    info->payload_types[0] = 96;
    info->payload_type_count = 1;
}

/* A fake RTP packet of the given size whose seq and timestamp encode i. */
static size_t make_packet(uint8_t *buf, size_t size, unsigned i)
{
    memset(buf, (int)(i & 0xff), size);
    buf[0] = 0x80;
    buf[1] = 96;
    buf[2] = (uint8_t)(i >> 8);
    buf[3] = (uint8_t)i;
    uint32_t ts = i * 3000;
    buf[4] = (uint8_t)(ts >> 24);
    buf[5] = (uint8_t)(ts >> 16);
    buf[6] = (uint8_t)(ts >> 8);
    buf[7] = (uint8_t)ts;
    return size;
}

static size_t packet_size(unsigned i)
{
    return 12 + (i * 37) % 300;
}

/* Writes `count` records into dir with the given rotation; every 7th is RTCP, every 30th
 * a keyframe; arrival times 10 ms apart. */
static void write_track(const char *dir, unsigned count, uint64_t max_bytes, int64_t max_ns)
{
    struct cap_track_writer_config cfg = {0};
    cfg.dir = dir;
    fill_info(&cfg.info);
    cfg.max_chunk_bytes = max_bytes;
    cfg.max_chunk_ns = max_ns;
    cfg.fsync_interval_ns = 0;
    cfg.buffer_bytes = 1024;
    struct cap_track_writer *w;
    assert_int_equal(cap_track_writer_open(&w, &cfg), 0);
    uint8_t pkt[400];
    for (unsigned i = 0; i < count; i++) {
        size_t n = make_packet(pkt, packet_size(i), i);
        enum cap_record_type type = i % 7 == 3 ? CAP_RECORD_RTCP : CAP_RECORD_RTP;
        uint8_t flags = i % 30 == 0 ? CAP_RECORD_FLAG_KEYFRAME : 0;
        assert_int_equal(cap_track_writer_append(w, type, flags, T0 + (int64_t)i * 10 * MS, pkt, n), 0);
    }
    assert_int_equal(cap_track_writer_close(w), 0);
}

static void expect_record(const struct cap_record *rec, unsigned i)
{
    uint8_t pkt[400];
    size_t n = make_packet(pkt, packet_size(i), i);
    assert_int_equal(rec->type, i % 7 == 3 ? CAP_RECORD_RTCP : CAP_RECORD_RTP);
    assert_int_equal(rec->arrival_ns, T0 + (int64_t)i * 10 * MS);
    assert_int_equal(rec->len, n);
    assert_memory_equal(rec->data, pkt, n);
    assert_int_equal(rec->flags, i % 30 == 0 ? CAP_RECORD_FLAG_KEYFRAME : 0);
}

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

static void test_chunk_round_trip_keeps_every_record_and_header(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "roundtrip");
    write_track(dir, 500, 0, 0);
    char chunk[400];
    cap_track_chunk_path(chunk, sizeof(chunk), dir, 1);
    struct cap_chunk_reader *r;
    assert_int_equal(cap_chunk_open(&r, chunk), 0);
    const struct cap_track_info *info = cap_chunk_info(r);
    assert_string_equal(info->track_id, "peer1-video");
    assert_string_equal(info->codec, "vp8");
    assert_string_equal(info->fmtp, "max-fs=12288;max-fr=60");
    assert_int_equal(info->ssrc, 0xdeadbeef);
    assert_int_equal(info->clock_rate, 90000);
    assert_int_equal(info->payload_type_count, 1);
    assert_int_equal(info->payload_types[0], 96);
    assert_int_equal(info->chunk_seq, 1);
    const struct cap_chunk_summary *s = cap_chunk_summary(r);
    assert_true(s->sealed);
    assert_int_equal(s->rtp_records + s->rtcp_records, 500);
    assert_int_equal(s->keyframes, 17);
    assert_int_equal(s->first_arrival_ns, T0);
    assert_int_equal(s->last_arrival_ns, T0 + 499 * 10 * MS);
    struct cap_record rec;
    for (unsigned i = 0; i < 500; i++) {
        assert_int_equal(cap_chunk_next(r, &rec), 1);
        expect_record(&rec, i);
    }
    assert_int_equal(cap_chunk_next(r, &rec), 0);
    cap_chunk_close(r);
}

static void test_writer_rotates_by_size_and_track_reader_spans_chunks(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "bysize");
    write_track(dir, 1000, 16 * 1024, 0);
    struct cap_track_reader *t;
    assert_int_equal(cap_track_open(&t, dir), 0);
    assert_true(cap_track_chunk_count(t) >= 10);
    struct cap_record rec;
    for (unsigned i = 0; i < 1000; i++) {
        assert_int_equal(cap_track_next(t, &rec), 1);
        expect_record(&rec, i);
    }
    assert_int_equal(cap_track_next(t, &rec), 0);
    cap_track_close(t);
    for (unsigned seq = 1; seq <= 3; seq++) {
        char chunk[400];
        cap_track_chunk_path(chunk, sizeof(chunk), dir, seq);
        struct stat st;
        assert_int_equal(stat(chunk, &st), 0);
        assert_true(st.st_size <= 16 * 1024 + 4096); /* records plus a sealed index */
    }
}

static void test_writer_rotates_by_arrival_time(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "bytime");
    write_track(dir, 1000, 0, 2000 * MS); /* 10 s of records, 2 s chunks */
    struct cap_track_reader *t;
    assert_int_equal(cap_track_open(&t, dir), 0);
    assert_int_equal(cap_track_chunk_count(t), 5);
    cap_track_close(t);
    char chunk[400];
    cap_track_chunk_path(chunk, sizeof(chunk), dir, 2);
    struct cap_chunk_reader *r;
    assert_int_equal(cap_chunk_open(&r, chunk), 0);
    assert_int_equal(cap_chunk_summary(r)->first_arrival_ns, T0 + 2000 * MS);
    assert_int_equal(cap_chunk_summary(r)->last_arrival_ns, T0 + 3990 * MS);
    assert_int_equal(cap_chunk_info(r)->chunk_seq, 2);
    cap_chunk_close(r);
}

static void test_seek_by_time_lands_on_first_record_at_or_after(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "seek");
    write_track(dir, 3000, 64 * 1024, 0);
    struct cap_track_reader *t;
    assert_int_equal(cap_track_open(&t, dir), 0);
    const unsigned targets[] = {0, 1, 255, 256, 257, 1000, 1999, 2999};
    for (size_t k = 0; k < sizeof(targets) / sizeof(targets[0]); k++) {
        unsigned i = targets[k];
        /* 5 ms before record i: the first at or after is i. */
        int64_t when = T0 + (int64_t)i * 10 * MS - (i ? 5 * MS : 0);
        assert_int_equal(cap_track_seek(t, when), 0);
        struct cap_record rec;
        assert_int_equal(cap_track_next(t, &rec), 1);
        expect_record(&rec, i);
    }
    assert_int_equal(cap_track_seek(t, T0 + 31000 * MS), 0);
    struct cap_record rec;
    assert_int_equal(cap_track_next(t, &rec), 0);
    cap_track_close(t);
}

static void copy_prefix(const char *from, const char *to, size_t len)
{
    char *data;
    size_t size;
    assert_int_equal(cap_read_file(from, 1 << 20, &data, &size), 0);
    assert_true(len <= size);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(cap_write_all(fd, data, len), 0);
    close(fd);
    free(data);
}

static void test_torn_chunk_repairs_at_every_byte_offset(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "torn");
    write_track(dir, 40, 0, 0);
    char whole[400], cut[400];
    cap_track_chunk_path(whole, sizeof(whole), dir, 1);
    path_in(cut, sizeof(cut), "cut.ctrk");

    /* Where each record ends, from an intact read. */
    struct cap_chunk_reader *r;
    assert_int_equal(cap_chunk_open(&r, whole), 0);
    uint64_t ends[40];
    struct cap_record rec;
    for (unsigned i = 0; i < 40; i++) {
        assert_int_equal(cap_chunk_next(r, &rec), 1);
        ends[i] = rec.offset + CAP_CHUNK_RECORD_OVERHEAD + rec.len;
    }
    uint64_t header_end = ends[0] - CAP_CHUNK_RECORD_OVERHEAD - packet_size(0);
    cap_chunk_close(r);
    struct stat st;
    assert_int_equal(stat(whole, &st), 0);

    for (size_t len = 0; len <= (size_t)st.st_size; len++) {
        copy_prefix(whole, cut, len);
        struct cap_chunk_repair_report rep;
        assert_int_equal(cap_chunk_repair(cut, &rep), 0);
        unsigned expect = 0;
        while (expect < 40 && ends[expect] <= len)
            expect++;
        if (len < header_end) {
            assert_true(rep.removed);
            assert_int_equal(access(cut, F_OK), -1);
            continue;
        }
        assert_int_equal(rep.records, expect);
        assert_int_equal(cap_chunk_open(&r, cut), 0);
        assert_true(cap_chunk_summary(r)->sealed);
        for (unsigned i = 0; i < expect; i++) {
            assert_int_equal(cap_chunk_next(r, &rec), 1);
            expect_record(&rec, i);
        }
        assert_int_equal(cap_chunk_next(r, &rec), 0);
        cap_chunk_close(r);
        /* Repairing a repaired chunk changes nothing. */
        assert_int_equal(cap_chunk_repair(cut, &rep), 0);
        assert_true(rep.was_sealed);
        assert_int_equal(rep.records, expect);
    }
}

static void test_flipped_bit_in_a_record_is_caught_by_its_checksum(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "flip");
    write_track(dir, 20, 0, 0);
    char whole[400], bad[400];
    cap_track_chunk_path(whole, sizeof(whole), dir, 1);
    path_in(bad, sizeof(bad), "bad.ctrk");
    struct cap_chunk_reader *r;
    assert_int_equal(cap_chunk_open(&r, whole), 0);
    struct cap_record rec;
    uint64_t start[20], end[20];
    for (unsigned i = 0; i < 20; i++) {
        assert_int_equal(cap_chunk_next(r, &rec), 1);
        start[i] = rec.offset;
        end[i] = rec.offset + CAP_CHUNK_RECORD_OVERHEAD + rec.len;
    }
    cap_chunk_close(r);
    char *data;
    size_t size;
    assert_int_equal(cap_read_file(whole, 1 << 20, &data, &size), 0);

    const unsigned victims[] = {0, 5, 10, 19};
    for (size_t v = 0; v < 4; v++) {
        unsigned i = victims[v];
        for (uint64_t byte = start[i]; byte < end[i]; byte += 3) {
            for (int bit = 0; bit < 8; bit += 5) {
                data[byte] ^= (char)(1 << bit);
                int fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                assert_int_equal(cap_write_all(fd, data, size), 0);
                close(fd);
                data[byte] ^= (char)(1 << bit);

                assert_int_equal(cap_chunk_open(&r, bad), 0);
                unsigned seen = 0;
                int errors = 0;
                int got;
                while ((got = cap_chunk_next(r, &rec)) != 0) {
                    if (got < 0) {
                        assert_int_equal(got, CAP_ECHECKSUM);
                        errors++;
                        continue;
                    }
                    /* Every record handed out is a real one, never the damaged one. */
                    unsigned idx = seen + (seen >= i ? 1 : 0);
                    assert_true(idx < 20);
                    expect_record(&rec, idx);
                    seen++;
                }
                assert_int_equal(errors, 1);
                assert_int_equal(seen, 19);
                cap_chunk_close(r);

                /* A sealed chunk is not a torn one: repair leaves it exactly as it is. */
                struct cap_chunk_repair_report rep;
                assert_int_equal(cap_chunk_repair(bad, &rep), 0);
                assert_true(rep.was_sealed);
                struct stat st;
                assert_int_equal(stat(bad, &st), 0);
                assert_int_equal((size_t)st.st_size, size);
            }
        }
    }
    free(data);
}

static void test_header_damage_and_foreign_files_are_refused(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "hdr");
    write_track(dir, 3, 0, 0);
    char whole[400], bad[400];
    cap_track_chunk_path(whole, sizeof(whole), dir, 1);
    path_in(bad, sizeof(bad), "hdr.ctrk");
    char *data;
    size_t size;
    assert_int_equal(cap_read_file(whole, 1 << 20, &data, &size), 0);
    struct cap_chunk_reader *r;

    data[20] ^= 0x10; /* inside the JSON */
    int fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cap_write_all(fd, data, size);
    close(fd);
    assert_int_equal(cap_chunk_open(&r, bad), CAP_ECHECKSUM);
    data[20] ^= 0x10;

    data[4] = 9; /* version */
    fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cap_write_all(fd, data, size);
    close(fd);
    assert_int_equal(cap_chunk_open(&r, bad), CAP_EVERSION);

    fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cap_write_all(fd, "GIF89a not a chunk at all", 25);
    close(fd);
    assert_int_equal(cap_chunk_open(&r, bad), CAP_EFORMAT);
    struct cap_chunk_repair_report rep;
    assert_int_equal(cap_chunk_repair(bad, &rep), CAP_EFORMAT);
    assert_int_equal(access(bad, F_OK), 0);
    free(data);
}

static void test_writer_refuses_oversized_and_unknown_records(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "refuse");
    struct cap_track_writer_config cfg = {0};
    cfg.dir = dir;
    fill_info(&cfg.info);
    struct cap_track_writer *w;
    assert_int_equal(cap_track_writer_open(&w, &cfg), 0);
    static uint8_t big[70000];
    assert_int_equal(cap_track_writer_append(w, CAP_RECORD_RTP, 0, T0, big, sizeof(big)), CAP_EINVAL);
    assert_int_equal(cap_track_writer_append(w, CAP_RECORD_INDEX, 0, T0, big, 10), CAP_EINVAL);
    assert_int_equal(cap_track_writer_append(w, CAP_RECORD_RTP, 0, T0, big, 65535), 0);
    assert_int_equal(cap_track_writer_close(w), 0);
    struct cap_track_reader *t;
    assert_int_equal(cap_track_open(&t, dir), 0);
    struct cap_record rec;
    assert_int_equal(cap_track_next(t, &rec), 1);
    assert_int_equal(rec.len, 65535);
    assert_int_equal(cap_track_next(t, &rec), 0);
    cap_track_close(t);
}

static void test_unsealed_chunk_reads_and_reports_torn_tail(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "open");
    struct cap_track_writer_config cfg = {0};
    cfg.dir = dir;
    fill_info(&cfg.info);
    cfg.buffer_bytes = 256;
    struct cap_track_writer *w;
    assert_int_equal(cap_track_writer_open(&w, &cfg), 0);
    uint8_t pkt[400];
    for (unsigned i = 0; i < 10; i++) {
        size_t n = make_packet(pkt, packet_size(i), i);
        enum cap_record_type type = i % 7 == 3 ? CAP_RECORD_RTCP : CAP_RECORD_RTP;
        uint8_t flags = i % 30 == 0 ? CAP_RECORD_FLAG_KEYFRAME : 0;
        assert_int_equal(cap_track_writer_append(w, type, flags, T0 + (int64_t)i * 10 * MS, pkt, n), 0);
    }
    assert_int_equal(cap_track_writer_sync(w), 0);
    /* While the writer is live the chunk is readable as far as it was written. */
    struct cap_chunk_reader *r;
    assert_int_equal(cap_chunk_open(&r, cap_track_writer_current_path(w)), 0);
    assert_false(cap_chunk_summary(r)->sealed);
    struct cap_record rec;
    for (unsigned i = 0; i < 10; i++) {
        assert_int_equal(cap_chunk_next(r, &rec), 1);
        expect_record(&rec, i);
    }
    assert_int_equal(cap_chunk_next(r, &rec), 0);
    cap_chunk_close(r);
    /* Append a torn half record by hand: the reader says so. */
    int fd = open(cap_track_writer_current_path(w), O_WRONLY | O_APPEND);
    uint8_t half[10] = {1, 0, 0, 0, 200, 0, 0, 0, 0, 0};
    cap_write_all(fd, half, sizeof(half));
    close(fd);
    assert_int_equal(cap_chunk_open(&r, cap_track_writer_current_path(w)), 0);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(cap_chunk_next(r, &rec), 1);
    assert_int_equal(cap_chunk_next(r, &rec), CAP_ETRUNC);
    assert_int_equal(cap_chunk_next(r, &rec), 0);
    uint64_t third = 0;
    cap_chunk_seek(r, T0 + 30 * MS);
    assert_int_equal(cap_chunk_next(r, &rec), 1);
    third = rec.offset;
    cap_chunk_close(r);
    char path[400];
    strcpy(path, cap_track_writer_current_path(w));

    /* Damage in the middle of an unsealed chunk is not a torn tail: repair refuses. */
    char *data;
    size_t size;
    assert_int_equal(cap_read_file(path, 1 << 20, &data, &size), 0);
    data[third + 20] ^= 0x40;
    fd = open(path, O_WRONLY);
    cap_write_all(fd, data, size);
    close(fd);
    struct cap_chunk_repair_report rep;
    assert_int_equal(cap_chunk_repair(path, &rep), CAP_ECHECKSUM);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((size_t)st.st_size, size);
    /* Mended, the torn half record is cut and the chunk sealed with all ten. */
    data[third + 20] ^= 0x40;
    fd = open(path, O_WRONLY);
    cap_write_all(fd, data, size);
    close(fd);
    assert_int_equal(cap_chunk_repair(path, &rep), 0);
    assert_int_equal(rep.records, 10);
    assert_int_equal(rep.cut_bytes, 10);
    free(data);
    cap_track_writer_close(w);
}

static void test_fsync_interval_bounds_unsynced_data(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "fsync");
    struct cap_track_writer_config cfg = {0};
    cfg.dir = dir;
    fill_info(&cfg.info);
    cfg.fsync_interval_ns = 1; /* every append is past the interval */
    struct cap_track_writer *w;
    assert_int_equal(cap_track_writer_open(&w, &cfg), 0);
    uint8_t pkt[100];
    for (unsigned i = 0; i < 5; i++) {
        make_packet(pkt, sizeof(pkt), i);
        assert_int_equal(cap_track_writer_append(w, CAP_RECORD_RTP, 0, T0 + i, pkt, sizeof(pkt)), 0);
    }
    assert_int_equal(cap_track_writer_stats(w)->fsyncs, 5);
    assert_int_equal(cap_track_writer_close(w), 0);

    /* With a long interval nothing is synced until the tick says it is time. */
    path_in(dir, sizeof(dir), "fsync-tick");
    cfg.dir = dir;
    cfg.fsync_interval_ns = INT64_C(3600) * 1000000000;
    assert_int_equal(cap_track_writer_open(&w, &cfg), 0);
    assert_int_equal(cap_track_writer_append(w, CAP_RECORD_RTP, 0, T0, pkt, sizeof(pkt)), 0);
    assert_int_equal(cap_track_writer_stats(w)->fsyncs, 0);
    assert_int_equal(cap_track_writer_tick(w, INT64_MAX / 2), 0);
    assert_int_equal(cap_track_writer_stats(w)->fsyncs, 1);
    /* What was synced is on disk and readable while the writer keeps the chunk open. */
    struct cap_chunk_reader *r;
    assert_int_equal(cap_chunk_open(&r, cap_track_writer_current_path(w)), 0);
    struct cap_record rec;
    assert_int_equal(cap_chunk_next(r, &rec), 1);
    cap_chunk_close(r);
    assert_int_equal(cap_track_writer_close(w), 0);
}

/* Reads a track reader to its end: the records that came out (checked against what
 * write_track wrote, given how many a damaged record hides) and the damage reported. */
static void read_to_end(struct cap_track_reader *t, unsigned expected, unsigned damaged_index,
                        int expected_errors)
{
    struct cap_record rec;
    unsigned seen = 0;
    int errors = 0, got;
    while ((got = cap_track_next(t, &rec)) != 0) {
        if (got < 0) {
            assert_int_equal(got, CAP_ECHECKSUM);
            errors++;
            continue;
        }
        unsigned idx = seen + (expected_errors && seen >= damaged_index ? 1 : 0);
        expect_record(&rec, idx);
        seen++;
    }
    assert_int_equal(errors, expected_errors);
    assert_int_equal(seen, expected - (unsigned)expected_errors);
}

/* Flips a byte inside the body of record i of a chunk, in place, then gives the file back
 * the modification time it had (as if nothing had happened), or one a second later. */
static void damage_record(const char *path, unsigned i, bool keep_mtime)
{
    struct cap_chunk_reader *r;
    assert_int_equal(cap_chunk_open(&r, path), 0);
    struct cap_record rec;
    for (unsigned k = 0; k <= i; k++)
        assert_int_equal(cap_chunk_next(r, &rec), 1);
    uint64_t where = rec.offset + CAP_CHUNK_RECORD_HEADER_LEN + 5;
    cap_chunk_close(r);
    struct stat before;
    assert_int_equal(stat(path, &before), 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, (off_t)where), 1);
    byte ^= 0x20;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)where), 1);
    close(fd);
    struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, before.st_mtim};
    if (!keep_mtime)
        times[1].tv_sec++;
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void test_rewind_reads_every_record_again(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "rewind");
    write_track(dir, 200, 2000, 0);
    struct cap_track_reader *t;
    assert_int_equal(cap_track_open(&t, dir), 0);
    assert_true(cap_track_chunk_count(t) > 3);
    for (int pass = 0; pass < 3; pass++) {
        read_to_end(t, 200, 0, 0);
        assert_int_equal(cap_track_rewind(t), 0);
    }
    /* After a partial read, too. */
    struct cap_record rec;
    for (unsigned i = 0; i < 50; i++)
        assert_int_equal(cap_track_next(t, &rec), 1);
    assert_int_equal(cap_track_rewind(t), 0);
    read_to_end(t, 200, 0, 0);
    cap_track_close(t);
}

static void test_rewind_checks_again_a_sealed_chunk_that_changed(void **state)
{
    (void)state;
    char dir[300], path[400];
    path_in(dir, sizeof(dir), "rewind-changed");
    write_track(dir, 40, 0, 0);
    cap_track_chunk_path(path, sizeof(path), dir, 1);
    struct cap_track_reader *t;
    assert_int_equal(cap_track_open(&t, dir), 0);
    read_to_end(t, 40, 0, 0);
    damage_record(path, 12, false); /* written to later: its modification time moved */
    assert_int_equal(cap_track_rewind(t), 0);
    read_to_end(t, 40, 12, 1);
    cap_track_close(t);
}

static void test_rewind_checks_again_a_sealed_chunk_that_was_replaced(void **state)
{
    (void)state;
    char dir[300], path[400], copy[420], cmd[900];
    path_in(dir, sizeof(dir), "rewind-replaced");
    write_track(dir, 40, 0, 0);
    cap_track_chunk_path(path, sizeof(path), dir, 1);
    struct cap_track_reader *t;
    assert_int_equal(cap_track_open(&t, dir), 0);
    read_to_end(t, 40, 0, 0);
    /* Another file, same size and modification time, renamed over it: a new inode. */
    snprintf(copy, sizeof(copy), "%s.copy", path);
    snprintf(cmd, sizeof(cmd), "cp -p %s %s", path, copy);
    assert_int_equal(system(cmd), 0);
    damage_record(copy, 30, true);
    struct stat original, replacement;
    assert_int_equal(stat(path, &original), 0);
    assert_int_equal(rename(copy, path), 0);
    assert_int_equal(stat(path, &replacement), 0);
    assert_int_equal(replacement.st_size, original.st_size);
    assert_int_equal(replacement.st_mtim.tv_sec, original.st_mtim.tv_sec);
    assert_int_equal(replacement.st_mtim.tv_nsec, original.st_mtim.tv_nsec);
    assert_int_equal(cap_track_rewind(t), 0);
    read_to_end(t, 40, 30, 1);
    cap_track_close(t);
}

static void test_rewind_checks_again_a_chunk_that_had_damage(void **state)
{
    (void)state;
    char dir[300], path[400];
    path_in(dir, sizeof(dir), "rewind-damaged");
    write_track(dir, 40, 0, 0);
    cap_track_chunk_path(path, sizeof(path), dir, 1);
    damage_record(path, 7, true);
    struct cap_track_reader *t;
    assert_int_equal(cap_track_open(&t, dir), 0);
    for (int pass = 0; pass < 2; pass++) {
        read_to_end(t, 40, 7, 1);
        assert_int_equal(cap_track_rewind(t), 0);
    }
    cap_track_close(t);
}

static void test_rewind_checks_an_unsealed_chunk_every_time(void **state)
{
    (void)state;
    char dir[300];
    path_in(dir, sizeof(dir), "rewind-open");
    struct cap_track_writer_config cfg = {0};
    cfg.dir = dir;
    fill_info(&cfg.info);
    struct cap_track_writer *w;
    assert_int_equal(cap_track_writer_open(&w, &cfg), 0);
    uint8_t pkt[400];
    for (unsigned i = 0; i < 20; i++) {
        size_t n = make_packet(pkt, packet_size(i), i);
        enum cap_record_type type = i % 7 == 3 ? CAP_RECORD_RTCP : CAP_RECORD_RTP;
        uint8_t flags = i % 30 == 0 ? CAP_RECORD_FLAG_KEYFRAME : 0;
        int64_t arrival = T0 + (int64_t)i * 10 * MS;
        assert_int_equal(cap_track_writer_append(w, type, flags, arrival, pkt, n), 0);
    }
    assert_int_equal(cap_track_writer_sync(w), 0);
    struct cap_track_reader *t;
    assert_int_equal(cap_track_open(&t, dir), 0);
    read_to_end(t, 20, 0, 0);
    /* Same size, same time: only a chunk known never to change could be taken on trust. */
    damage_record(cap_track_writer_current_path(w), 9, true);
    assert_int_equal(cap_track_rewind(t), 0);
    read_to_end(t, 20, 9, 1);
    cap_track_close(t);
    cap_track_writer_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_round_trip_keeps_every_record_and_header),
        cmocka_unit_test(test_writer_rotates_by_size_and_track_reader_spans_chunks),
        cmocka_unit_test(test_writer_rotates_by_arrival_time),
        cmocka_unit_test(test_seek_by_time_lands_on_first_record_at_or_after),
        cmocka_unit_test(test_torn_chunk_repairs_at_every_byte_offset),
        cmocka_unit_test(test_flipped_bit_in_a_record_is_caught_by_its_checksum),
        cmocka_unit_test(test_header_damage_and_foreign_files_are_refused),
        cmocka_unit_test(test_writer_refuses_oversized_and_unknown_records),
        cmocka_unit_test(test_unsealed_chunk_reads_and_reports_torn_tail),
        cmocka_unit_test(test_fsync_interval_bounds_unsynced_data),
        cmocka_unit_test(test_rewind_reads_every_record_again),
        cmocka_unit_test(test_rewind_checks_again_a_sealed_chunk_that_changed),
        cmocka_unit_test(test_rewind_checks_again_a_sealed_chunk_that_was_replaced),
        cmocka_unit_test(test_rewind_checks_again_a_chunk_that_had_damage),
        cmocka_unit_test(test_rewind_checks_an_unsealed_chunk_every_time),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
