/* The three JSON files that sit beside a recording's tracks (metadata.json,
 * timeline.json, policy.json) in the shapes of the users' reference notes. Built here as
 * plain JSON values; writing them is the caller's I/O. */
#ifndef CAP_ENGINE_RECORDING_FILES_H
#define CAP_ENGINE_RECORDING_FILES_H

#include <jansson.h>
#include <stdint.h>

struct cap_file_track {
    const char *track_id;
    const char *peer_id;
    const char *kind;
    const char *codec;
    uint32_t ssrc;
    uint32_t clock_rate;
    uint32_t channels;
    uint64_t packets;
    uint64_t bytes;
    int64_t started_ns;
    int64_t ended_ns;
};

struct cap_file_recording {
    const char *room_id;
    const char *room_name;
    const char *recording_id;
    const char *started_by;
    const char *source;          /* "import-pcap", "recorder", ... */
    int64_t started_ns;          /* time zero */
    int64_t ended_ns;
    const struct cap_file_track *tracks;
    size_t track_count;
};

/* The default recording policy of the reference note (recording enabled, host records,
 * all media recorded). */
json_t *cap_policy_default(void);
json_t *cap_metadata_json(const struct cap_file_recording *rec, json_t *policy);
json_t *cap_timeline_json(const struct cap_file_recording *rec);
/* Writes metadata.json, timeline.json and policy.json (the default policy) of a recording
 * made outside the daemon (an import) into dir. 0 or a negative error. */
int cap_recording_files_write_default(const char *dir, const struct cap_file_recording *rec);

/* ISO 8601 string value for a wall-clock time. */
json_t *cap_json_time(int64_t unix_ns);

#endif
