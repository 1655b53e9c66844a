/* The track writer (writer.h): buffered appends to the current chunk, interval fsync,
 * rotation by size and arrival time, and sealing each chunk with its index at rotation
 * and close. A chunk file is created on the first record, so idle tracks leave none. */
#include "track/writer.h"

#include "track/chunk_format.h"
#include "util/clock.h"
#include "util/crc32c.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What every record touches comes first, then cfg's numbers: a recorder appends to a
 * thousand writers in turn, each cold in cache, and this keeps one record's work to a few
 * neighbouring cache lines instead of four pages (the paths and the track info are ~13 KiB). */
struct cap_track_writer {
    int fd;                    /* -1 between chunks */
    bool chunk_has_records;
    bool unsynced;             /* bytes written to the fd since the last fsync */
    uint64_t offset;           /* logical end of the chunk: written plus buffered */
    struct cap_buf buf;        /* holds the chunk's bytes from offset - buf.len on */
    size_t block;              /* full buffers are written up to a multiple of this */
    int64_t chunk_first_arrival;
    int64_t last_sync_mono;
    struct cap_track_writer_stats stats;
    struct cap_chunk_indexer ix;
    uint32_t chunk_seq;
    struct cap_track_writer_config cfg;
    char dir[PATH_MAX];
    char path[PATH_MAX];
};

int cap_track_chunk_path(char *out, size_t size, const char *dir, uint32_t chunk_seq)
{
    int n = snprintf(out, size, "%s/%08u.ctrk", dir, chunk_seq);
    return n < 0 || (size_t)n >= size ? CAP_ELIMIT : 0;
}

uint32_t cap_track_last_chunk_seq(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint32_t highest = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint32_t seq = cap_chunk_seq_of_name(e->d_name);
        if (seq > highest)
            highest = seq;
    }
    closedir(d);
    return highest;
}

int cap_track_writer_open(struct cap_track_writer **out, const struct cap_track_writer_config *cfg)
{
    if (!cfg->dir || strlen(cfg->dir) >= PATH_MAX - 32)
        return CAP_EINVAL;
    int err = cap_mkdir_p(cfg->dir);
    if (err)
        return err;
    struct cap_track_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return CAP_ENOMEM;
    w->cfg = *cfg;
    strcpy(w->dir, cfg->dir);
    w->cfg.dir = w->dir;
    if (!w->cfg.max_chunk_bytes)
        w->cfg.max_chunk_bytes = CAP_TRACK_DEFAULT_CHUNK_BYTES;
    if (!w->cfg.max_chunk_ns)
        w->cfg.max_chunk_ns = CAP_TRACK_DEFAULT_CHUNK_NS;
    if (!w->cfg.buffer_bytes)
        w->cfg.buffer_bytes = CAP_TRACK_DEFAULT_BUFFER;
    w->block = 1;
    while (w->block <= w->cfg.buffer_bytes / 2)
        w->block *= 2;
    w->chunk_seq = cfg->first_chunk_seq ? cfg->first_chunk_seq - 1 : cap_track_last_chunk_seq(w->dir);
    w->fd = -1;
    /* The buffer may briefly hold a whole sealed index on top of records. */
    cap_buf_init(&w->buf, w->cfg.buffer_bytes + CAP_CHUNK_PACKET_MAX + CAP_CHUNK_INDEX_MAX + 4096);
    w->last_sync_mono = cap_clock_mono_ns();
    *out = w;
    return 0;
}

/* Writes the buffer's first n bytes and keeps the rest for the next write. */
static int write_prefix(struct cap_track_writer *w, size_t n)
{
    if (n == 0 || w->fd < 0)
        return 0;
    int err = cap_write_all(w->fd, w->buf.data, n);
    if (err)
        return err;
    w->stats.bytes += n;
    memmove(w->buf.data, w->buf.data + n, w->buf.len - n);
    w->buf.len -= n;
    w->unsynced = true;
    return 0;
}

static int flush_buffer(struct cap_track_writer *w)
{
    return write_prefix(w, w->buf.len);
}

/* Writes the buffer up to the last multiple of block in the file, keeping the rest (at most
 * one record). Writes that cover whole aligned blocks let the page cache take them as large
 * folios: ext4 spends about a third less per byte than on the same bytes written at
 * arbitrary offsets. */
static int write_blocks(struct cap_track_writer *w)
{
    uint64_t start = w->offset - w->buf.len;
    uint64_t cut = w->offset & ~((uint64_t)w->block - 1);
    return cut > start ? write_prefix(w, (size_t)(cut - start)) : 0;
}

static int sync_now(struct cap_track_writer *w, int64_t now)
{
    int err = flush_buffer(w);
    if (err)
        return err;
    w->last_sync_mono = now;
    if (!w->unsynced || w->fd < 0)
        return 0;
    int64_t t0 = cap_clock_mono_ns();
    if (fdatasync(w->fd) != 0)
        return -errno;
    int64_t took = cap_clock_mono_ns() - t0;
    w->stats.fsyncs++;
    w->stats.fsync_ns_total += took;
    if (took > w->stats.fsync_ns_max)
        w->stats.fsync_ns_max = took;
    w->unsynced = false;
    return 0;
}

static int open_chunk(struct cap_track_writer *w, int64_t arrival_ns)
{
    w->chunk_seq++;
    int err = cap_track_chunk_path(w->path, sizeof(w->path), w->dir, w->chunk_seq);
    if (err)
        return err;
    int fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    w->fd = fd;
    struct cap_track_info info = w->cfg.info;
    info.chunk_seq = w->chunk_seq;
    info.created_ns = cap_clock_wall_ns();
    cap_buf_reset(&w->buf);
    err = cap_chunk_encode_header(&w->buf, &info);
    if (!err)
        err = flush_buffer(w);
    /* The folder entry must outlive a crash as much as the records in it. */
    if (!err && !w->cfg.caller_syncs)
        err = cap_fsync_parent(w->path);
    if (err) {
        close(fd);
        unlink(w->path);
        w->fd = -1;
        return err;
    }
    w->offset = (uint64_t)lseek(fd, 0, SEEK_CUR);
    cap_chunk_indexer_init(&w->ix);
    w->chunk_first_arrival = arrival_ns; /* reset by the first record */
    w->chunk_has_records = false;
    w->stats.chunks++;
    return 0;
}

static int seal_chunk(struct cap_track_writer *w)
{
    if (w->fd < 0)
        return 0;
    int err = cap_chunk_indexer_seal(&w->ix, w->offset, &w->buf);
    if (!err)
        err = w->cfg.caller_syncs ? flush_buffer(w) : sync_now(w, cap_clock_mono_ns());
    struct cap_chunk_summary summary = w->ix.summary;
    summary.sealed = true;
    cap_chunk_indexer_deinit(&w->ix);
    if (close(w->fd) != 0 && !err)
        err = -errno;
    w->fd = -1;
    if (!err && w->cfg.on_chunk_closed)
        w->cfg.on_chunk_closed(w->cfg.user, w->path, &summary);
    return err;
}

int cap_track_writer_append(struct cap_track_writer *w, enum cap_record_type type, uint8_t flags,
                            int64_t arrival_ns, const void *data, size_t len)
{
    if (type != CAP_RECORD_RTP && type != CAP_RECORD_RTCP && type != CAP_RECORD_EVENT)
        return CAP_EINVAL;
    if (len > CAP_CHUNK_PACKET_MAX)
        return CAP_EINVAL;
    size_t total = CAP_CHUNK_RECORD_OVERHEAD + len;
    int err;
    if (w->fd >= 0 && w->chunk_has_records &&
        (w->offset + total > w->cfg.max_chunk_bytes ||
         arrival_ns - w->chunk_first_arrival >= w->cfg.max_chunk_ns)) {
        if ((err = seal_chunk(w)))
            return err;
    }
    if (w->fd < 0 && (err = open_chunk(w, arrival_ns)))
        return err;
    if (!w->chunk_has_records)
        w->chunk_first_arrival = arrival_ns;
    if ((err = cap_buf_reserve(&w->buf, total)))
        return err;
    /* The checksum reads the caller's bytes, warm in cache, not the copy: with many tracks
     * the buffer's lines are cold and still on their way in while they are written. */
    uint8_t *rec = w->buf.data + w->buf.len;
    uint8_t header[CAP_CHUNK_RECORD_HEADER_LEN];
    cap_chunk_encode_record_header(header, (uint8_t)type, flags, (uint32_t)len, arrival_ns);
    uint32_t crc = cap_crc32c(cap_crc32c(0, header, sizeof(header)), data, len);
    memcpy(rec, header, sizeof(header));
    if (len)
        memcpy(rec + CAP_CHUNK_RECORD_HEADER_LEN, data, len);
    uint8_t *trailer = rec + CAP_CHUNK_RECORD_HEADER_LEN + len;
    trailer[0] = (uint8_t)crc;
    trailer[1] = (uint8_t)(crc >> 8);
    trailer[2] = (uint8_t)(crc >> 16);
    trailer[3] = (uint8_t)(crc >> 24);
    w->buf.len += total;
    cap_chunk_indexer_add(&w->ix, w->offset, (uint8_t)type, flags, arrival_ns, data, len);
    w->offset += total;
    w->chunk_has_records = true;
    w->stats.records++;
    /* the buffer has reached the file's next block boundary */
    if (w->offset > ((w->offset - w->buf.len) | (w->block - 1)) && (err = write_blocks(w)))
        return err;
    if (w->cfg.fsync_interval_ns > 0)
        return cap_track_writer_tick(w, cap_clock_mono_ns());
    return 0;
}

int cap_track_writer_tick(struct cap_track_writer *w, int64_t now_mono_ns)
{
    if (w->cfg.fsync_interval_ns <= 0 || now_mono_ns - w->last_sync_mono < w->cfg.fsync_interval_ns)
        return 0;
    return sync_now(w, now_mono_ns);
}

void cap_track_writer_prefetch(const struct cap_track_writer *w)
{
    __builtin_prefetch(w, 1);
    __builtin_prefetch((const char *)w + 64, 1);
    __builtin_prefetch((const char *)w + 128, 1);
}

void cap_track_writer_prefetch_tail(const struct cap_track_writer *w)
{
    if (!w->buf.data)
        return;
    const uint8_t *tail = w->buf.data + w->buf.len;
    __builtin_prefetch(tail, 1);
    __builtin_prefetch(tail + 64, 1);
}

int cap_track_writer_prepare(struct cap_track_writer *w)
{
    return w->fd >= 0 ? 0 : open_chunk(w, 0);
}

int cap_track_writer_flush(struct cap_track_writer *w)
{
    return flush_buffer(w);
}

int cap_track_writer_sync(struct cap_track_writer *w)
{
    return sync_now(w, cap_clock_mono_ns());
}

int cap_track_writer_update_info(struct cap_track_writer *w, const struct cap_track_info *info)
{
    int err = seal_chunk(w);
    w->cfg.info = *info;
    return err;
}

int cap_track_writer_close(struct cap_track_writer *w)
{
    if (!w)
        return 0;
    int err = seal_chunk(w);
    cap_buf_deinit(&w->buf);
    free(w);
    return err;
}

const struct cap_track_writer_stats *cap_track_writer_stats(const struct cap_track_writer *w)
{
    return &w->stats;
}

const char *cap_track_writer_current_path(const struct cap_track_writer *w)
{
    return w->fd >= 0 ? w->path : NULL;
}
