/* The spool uploader: one thread that copies what the recorder writes under its data folder
 * (rooms/{room}/{recording}/: sealed track chunks and metadata/timeline/policy.json) into the
 * blob store under the same keys, and frees local disk only once the store holds a chunk
 * byte for byte (size, and the ETag against the file's MD5). It keeps no state on disk: it
 * rescans the spool, so after a restart it carries on where the files say. While the store
 * is unreachable it retries with backoff and the backlog grows on local disk; past the quota
 * it raises an alarm (log and metric) but the recorder keeps recording: nothing is dropped. */
#ifndef CAP_INGEST_UPLOADER_H
#define CAP_INGEST_UPLOADER_H

#include "capstan/track.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cap_uploader_config {
    const char *data_dir;     /* the spool: the recorder's data folder */
    const char *storage_url;  /* where to (cap_blob_open); the thread has its own handle */
    uint64_t quota_bytes;     /* backlog above this raises the alarm; 0: no quota */
    bool keep_local;          /* upload but never delete (tests compare spool and store) */
    int64_t scan_interval_ns; /* how often the spool is looked at; 0: 1 s */
    int64_t max_backoff_ns;   /* the longest wait between retries; 0: 30 s */
};

struct cap_uploader_stats {
    uint64_t backlog_files; /* sealed chunks and changed JSON files not yet in the store */
    uint64_t backlog_bytes;
    uint64_t uploads;  /* objects confirmed in the store */
    uint64_t failures; /* failed attempts (each retry counts) */
    uint64_t deleted;  /* local chunks removed after their upload was confirmed */
    bool over_quota;
    bool store_ok; /* the last attempt reached the store */
};

struct cap_uploader;

/* Opens the store (no network needed, except for a URL with create_bucket=1) and starts the
 * thread. why gets the reason on failure. */
int cap_uploader_start(struct cap_uploader **out, const struct cap_uploader_config *cfg, char *why,
                       size_t why_size);
/* Something was written (a chunk sealed, a JSON file replaced): look soon. */
void cap_uploader_wake(struct cap_uploader *u);
/* One last pass while the store answers (the files written at shutdown go up), then the
 * thread ends and u is freed. Safe on NULL. */
void cap_uploader_stop(struct cap_uploader *u);
void cap_uploader_get_stats(const struct cap_uploader *u, struct cap_uploader_stats *out);

/* The totals of a track's chunks that are in the store but no longer in the spool, read
 * from each one's index (two ranged GETs per chunk): what a restart adds to the counts it
 * rebuilds from the chunks still on disk. track_key is "rooms/R/REC/tracks/T", local_dir
 * the track's folder. Uses its own store handle. CAP_EAGAIN if the store cannot be asked. */
int cap_uploader_remote_totals(const char *storage_url, const char *track_key,
                               const char *local_dir, struct cap_chunk_summary *sum);

#endif
