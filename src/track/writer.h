/* The track writer: appends records to a track folder's current chunk through a write
 * buffer, fsyncs at an interval, and rotates to a new chunk by size or by arrival time,
 * sealing each closed chunk with its index. One writer per track, used by one thread. */
#ifndef CAP_TRACK_WRITER_H
#define CAP_TRACK_WRITER_H

#include "capstan/track.h"

#include <stddef.h>
#include <stdint.h>

#define CAP_TRACK_DEFAULT_CHUNK_BYTES (64u << 20)
#define CAP_TRACK_DEFAULT_CHUNK_NS (INT64_C(60) * 1000000000)
#define CAP_TRACK_DEFAULT_BUFFER (64u << 10)

struct cap_track_writer;

/* Told each time a chunk is sealed and will never change again (an uploader's cue). */
typedef void (*cap_chunk_closed_fn)(void *user, const char *path, const struct cap_chunk_summary *s);

struct cap_track_writer_config {
    const char *dir;              /* the track folder; created (with parents) if missing */
    uint64_t max_chunk_bytes;     /* rotate past this size; 0: default */
    int64_t max_chunk_ns;         /* rotate when a record arrives this long after the chunk's first; 0: default */
    int64_t fsync_interval_ns;    /* 0: fsync at close only; > 0: fdatasync at most this long after a write */
    size_t buffer_bytes;          /* write buffer; 0: default */
    uint32_t first_chunk_seq;     /* 0: continue after the highest chunk already in dir */
    /* The caller makes the filesystem durable itself (the recorder's syncfs every interval):
     * no fsync when a chunk is created or sealed, which would stall a thread that writes
     * many tracks. */
    bool caller_syncs;
    cap_chunk_closed_fn on_chunk_closed;
    void *user;
    /* Last: the numbers above are read for every record, this (~5 KiB) only per chunk. */
    struct cap_track_info info;   /* chunk_seq and created_ns are set by the writer */
};

struct cap_track_writer_stats {
    uint64_t records;
    uint64_t bytes;       /* record bytes written, overhead included */
    uint64_t chunks;      /* chunks opened */
    uint64_t fsyncs;
    int64_t fsync_ns_total;
    int64_t fsync_ns_max;
};

int cap_track_writer_open(struct cap_track_writer **out, const struct cap_track_writer_config *cfg);
/* Appends one record (data may be up to 65535 bytes). Rotation and interval fsyncs happen
 * here. CAP_EINVAL for a bad type or size; I/O errors are returned as negative errno. */
int cap_track_writer_append(struct cap_track_writer *w, enum cap_record_type type, uint8_t flags,
                            int64_t arrival_ns, const void *data, size_t len);
/* Creates the next chunk file now rather than at the first record, so a thread that must
 * not stall (ingest) pays for the file creation before packets flow. */
int cap_track_writer_prepare(struct cap_track_writer *w);
/* Hints for a caller about to append to many writers in turn: the first starts loading the
 * writer's own state, the second (once that is in) where the next record will go. Neither
 * changes anything. */
void cap_track_writer_prefetch(const struct cap_track_writer *w);
void cap_track_writer_prefetch_tail(const struct cap_track_writer *w);
/* Hands what is buffered to the kernel (one write), without fsync: after this a crash of
 * the process loses nothing; only the machine going down can. */
int cap_track_writer_flush(struct cap_track_writer *w);
/* Writes what is buffered and fsyncs now if anything was written since the last fsync. */
int cap_track_writer_sync(struct cap_track_writer *w);
/* The periodic part of append, for idle tracks: fsync if the interval has passed. */
int cap_track_writer_tick(struct cap_track_writer *w, int64_t now_mono_ns);
/* Changes the track info written into the next chunks (e.g. an SSRC change); the current
 * chunk is sealed first so every chunk's header stays true for all its records. */
int cap_track_writer_update_info(struct cap_track_writer *w, const struct cap_track_info *info);
/* Seals the current chunk, fsyncs and frees. Safe on NULL. */
int cap_track_writer_close(struct cap_track_writer *w);

const struct cap_track_writer_stats *cap_track_writer_stats(const struct cap_track_writer *w);
const char *cap_track_writer_current_path(const struct cap_track_writer *w);

/* "DIR/00000001.ctrk"; CAP_ELIMIT if it does not fit. */
int cap_track_chunk_path(char *out, size_t size, const char *dir, uint32_t chunk_seq);
/* The highest chunk number in a track folder, 0 if none (or no folder). */
uint32_t cap_track_last_chunk_seq(const char *dir);

#endif
