/* Chunk write and read throughput: N records of S bytes through the track writer (with a
 * given fsync interval and rotation), then read back and checksummed by the track reader.
 * Prints one JSON line per phase. */
#include "capstan/track.h"
#include "track/writer.h"
#include "util/clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    unsigned long records = 1000000, size = 1200, fsync_ms = 1000, chunk_mb = 64;
    const char *dir = "/tmp/capstan-bench-chunk";
    static const struct option options[] = {
        {"records", required_argument, NULL, 'n'}, {"size", required_argument, NULL, 's'},
        {"fsync-ms", required_argument, NULL, 'f'}, {"chunk-mb", required_argument, NULL, 'c'},
        {"dir", required_argument, NULL, 'd'},      {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'n': records = strtoul(optarg, NULL, 10); break;
        case 's': size = strtoul(optarg, NULL, 10); break;
        case 'f': fsync_ms = strtoul(optarg, NULL, 10); break;
        case 'c': chunk_mb = strtoul(optarg, NULL, 10); break;
        case 'd': dir = optarg; break;
        default:
            fprintf(stderr, "usage: bench_chunk [--records N] [--size BYTES] [--fsync-ms MS] "
                            "[--chunk-mb MB] [--dir DIR]\n");
            return 2;
        }
    }
    if (size < 12 || size > 65535) {
        fprintf(stderr, "bench_chunk: --size must be 12..65535\n");
        return 2;
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;

    struct cap_track_writer_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = dir;
    strcpy(cfg.info.track_id, "bench-video");
    strcpy(cfg.info.kind, "video");
    strcpy(cfg.info.codec, "vp8");
    cfg.info.clock_rate = 90000;
    cfg.info.ssrc = 0x12345678;
    cfg.max_chunk_bytes = (uint64_t)chunk_mb << 20;
    cfg.max_chunk_ns = INT64_C(3600) * CAP_NS_PER_SEC;
    cfg.fsync_interval_ns = (int64_t)fsync_ms * CAP_NS_PER_MS;
    struct cap_track_writer *w;
    int err = cap_track_writer_open(&w, &cfg);
    if (err) {
        fprintf(stderr, "bench_chunk: %s\n", cap_strerror(err));
        return 1;
    }
    uint8_t *pkt = malloc(size);
    memset(pkt, 0xab, size);
    pkt[0] = 0x80;
    pkt[1] = 96;
    int64_t arrival = cap_clock_wall_ns();
    int64_t t0 = cap_clock_mono_ns();
    for (unsigned long i = 0; i < records; i++) {
        pkt[2] = (uint8_t)(i >> 8);
        pkt[3] = (uint8_t)i;
        err = cap_track_writer_append(w, CAP_RECORD_RTP, 0, arrival + (int64_t)i * 10000, pkt, size);
        if (err) {
            fprintf(stderr, "bench_chunk: append: %s\n", cap_strerror(err));
            return 1;
        }
    }
    err = cap_track_writer_close(w);
    int64_t t1 = cap_clock_mono_ns();
    if (err) {
        fprintf(stderr, "bench_chunk: close: %s\n", cap_strerror(err));
        return 1;
    }
    double secs = (double)(t1 - t0) / 1e9;
    double mb = (double)records * (double)size / 1e6;
    printf("{\"phase\":\"write\",\"records\":%lu,\"size\":%lu,\"fsync_ms\":%lu,\"seconds\":%.3f,"
           "\"records_per_s\":%.0f,\"mb_per_s\":%.1f}\n",
           records, size, fsync_ms, secs, (double)records / secs, mb / secs);

    struct cap_track_reader *r;
    t0 = cap_clock_mono_ns();
    if ((err = cap_track_open(&r, dir))) {
        fprintf(stderr, "bench_chunk: open: %s\n", cap_strerror(err));
        return 1;
    }
    unsigned long seen = 0;
    struct cap_record rec;
    while ((err = cap_track_next(r, &rec)) == 1)
        seen++;
    cap_track_close(r);
    t1 = cap_clock_mono_ns();
    if (err || seen != records) {
        fprintf(stderr, "bench_chunk: read back %lu of %lu records (%s)\n", seen, records,
                cap_strerror(err));
        return 1;
    }
    secs = (double)(t1 - t0) / 1e9;
    printf("{\"phase\":\"read\",\"records\":%lu,\"size\":%lu,\"seconds\":%.3f,"
           "\"records_per_s\":%.0f,\"mb_per_s\":%.1f}\n",
           records, size, secs, (double)records / secs, mb / secs);
    free(pkt);
    if (system(cmd) != 0)
        return 1;
    return 0;
}
