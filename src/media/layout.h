/* Layout geometry for compose: where each tile of a room goes on the canvas. Pure
 * arithmetic, no media: grid (the shape that gives each tile the most area for the
 * expected content aspect, an incomplete last row centred), and the focus layouts
 * (speaker, pinned, screenshare: one tile large above a strip of the others). Every
 * rectangle has even coordinates and sizes, as 4:2:0 pictures need. */
#ifndef CAP_MEDIA_LAYOUT_H
#define CAP_MEDIA_LAYOUT_H

#include "media/composition.h"

#include <stdbool.h>
#include <stddef.h>

#define CAP_LAYOUT_MAX_TILES 256

struct cap_rect {
    int x, y, w, h;
};

struct cap_layout_request {
    enum cap_layout layout;  /* DEFAULT is grid */
    int width, height;       /* canvas, even, >= 16 */
    size_t tiles;            /* how many tiles, in display order */
    int focus;               /* the tile shown large in a focus layout; -1: none (grid) */
    int aspect_w, aspect_h;  /* the content aspect the grid is chosen for; 0: 16:9 */
};

/* The strip of a focus layout is this share of the canvas height. */
#define CAP_LAYOUT_STRIP_DIVISOR 5

/* Fills cells[0..tiles-1]. A focus layout with no focus (or a single tile) falls back to
 * the grid. Returns 0, or CAP_EINVAL for a canvas too small or too many tiles. */
int cap_layout_cells(const struct cap_layout_request *req, struct cap_rect *cells);

/* The grid shape for n tiles on a width x height canvas. */
void cap_layout_grid_shape(int width, int height, size_t n, int aspect_w, int aspect_h, int *cols,
                           int *rows);

/* The largest rectangle of the source's aspect inside cell, centred (aspect kept). */
struct cap_rect cap_layout_fit(struct cap_rect cell, int src_w, int src_h);

bool cap_rect_equal(struct cap_rect a, struct cap_rect b);

#endif
