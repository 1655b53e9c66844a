/* Composition State (preview-composition-export.md): the JSON the composer page saves and
 * the export job reads. A starting layout, a timeline of layout changes and pins at times
 * (ms after the recording's time zero), per-peer mutes and the export's resolution and fps.
 * Parsed and validated here into plain structs; the same document drives
 * `capstan convert --composition FILE` and the export job. */
#ifndef CAP_MEDIA_COMPOSITION_H
#define CAP_MEDIA_COMPOSITION_H

#include "capstan/track.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cap_layout {
    CAP_LAYOUT_DEFAULT = 0,       /* not said: the composition's, else grid */
    CAP_LAYOUT_GRID,
    CAP_LAYOUT_SPEAKER,
    CAP_LAYOUT_PINNED,
    CAP_LAYOUT_SCREENSHARE,
};

#define CAP_COMPOSITION_MAX_EVENTS 10000
#define CAP_COMPOSITION_MAX_TRACKS 1000
#define CAP_COMPOSITION_MAX_BYTES (4 << 20)

enum cap_composition_event_type {
    CAP_COMPOSITION_LAYOUT = 1,   /* {"t", "type": "layout", "layout": "grid|speaker|pinned|screenshare"} */
    CAP_COMPOSITION_PIN,          /* {"t", "type": "pin", "peer_id": "p"} */
    CAP_COMPOSITION_UNPIN,        /* {"t", "type": "unpin"} or a pin with "peer_id": null */
};

struct cap_composition_event {
    int64_t t_ms;
    enum cap_composition_event_type type;
    enum cap_layout layout;                 /* LAYOUT */
    char peer_id[CAP_TRACK_ID_MAX];         /* PIN */
};

struct cap_composition_track {
    char peer_id[CAP_TRACK_ID_MAX];
    char track_id[CAP_TRACK_ID_MAX];        /* optional: one track of the peer, "" for all */
    bool muted;                             /* its audio is left out of the mix */
    bool hidden;                            /* its video gets no tile */
};

struct cap_composition {
    char recording_id[CAP_TRACK_ID_MAX];
    char room_id[CAP_TRACK_ID_MAX];
    enum cap_layout layout;                 /* DEFAULT when the document has none */
    struct cap_composition_event *events;   /* sorted by t (stable) */
    size_t event_count;
    struct cap_composition_track *tracks;
    size_t track_count;
    unsigned width, height;                 /* export.resolution, 0 when absent */
    unsigned fps;                           /* export.fps, 0 when absent */
};

/* Names <-> values: "grid", "speaker", "pinned", "screenshare". */
const char *cap_layout_name(enum cap_layout layout);
int cap_layout_parse(const char *name, enum cap_layout *out);

/* Validates and converts a Composition State document. On bad input returns CAP_EFORMAT
 * (or CAP_ERANGE, CAP_ELIMIT) with a message naming the field in why. */
int cap_composition_parse(json_t *doc, struct cap_composition *out, char *why, size_t why_size);
/* Same from a JSON file (at most CAP_COMPOSITION_MAX_BYTES). */
int cap_composition_load(const char *path, struct cap_composition *out, char *why, size_t why_size);
void cap_composition_deinit(struct cap_composition *c);
/* Back to the reference shape (for storing a validated copy). */
json_t *cap_composition_to_json(const struct cap_composition *c);

/* The state of the composition at time t_ms: the layout in force (initial when no event
 * yet) and the pinned peer ("" if none). Events apply in order; a layout event lets go of
 * an earlier pin, a pin holds until an unpin or a later layout event. */
void cap_composition_at(const struct cap_composition *c, enum cap_layout initial, int64_t t_ms,
                        enum cap_layout *layout, const char **pinned_peer);
/* Whether a track of a peer is muted / hidden by the composition. */
bool cap_composition_muted(const struct cap_composition *c, const char *peer_id, const char *track_id);
bool cap_composition_hidden(const struct cap_composition *c, const char *peer_id, const char *track_id);

#endif
