/* Layout geometry (layout.h): grid shape by largest fitted tile, focus layouts as a main
 * region over a bottom strip. */
#include "media/layout.h"

#include "capstan/error.h"

static int even_down(int v)
{
    return v & ~1;
}

bool cap_rect_equal(struct cap_rect a, struct cap_rect b)
{
    return a.x == b.x && a.y == b.y && a.w == b.w && a.h == b.h;
}

struct cap_rect cap_layout_fit(struct cap_rect cell, int src_w, int src_h)
{
    if (src_w <= 0 || src_h <= 0)
        return cell;
    /* Width-limited or height-limited, in integers to stay exact. */
    long long w = cell.w, h = (long long)cell.w * src_h / src_w;
    if (h > cell.h) {
        h = cell.h;
        w = (long long)cell.h * src_w / src_h;
    }
    struct cap_rect r;
    r.w = even_down((int)w);
    r.h = even_down((int)h);
    if (r.w < 2)
        r.w = 2;
    if (r.h < 2)
        r.h = 2;
    r.x = cell.x + even_down((cell.w - r.w) / 2);
    r.y = cell.y + even_down((cell.h - r.h) / 2);
    return r;
}

/* Area of an aspect_w:aspect_h picture fitted in a w x h cell. */
static long long fitted_area(int w, int h, int aspect_w, int aspect_h)
{
    struct cap_rect f = cap_layout_fit((struct cap_rect){0, 0, w, h}, aspect_w, aspect_h);
    return (long long)f.w * f.h;
}

void cap_layout_grid_shape(int width, int height, size_t n, int aspect_w, int aspect_h, int *cols,
                           int *rows)
{
    if (aspect_w <= 0 || aspect_h <= 0) {
        aspect_w = 16;
        aspect_h = 9;
    }
    /* The largest fitted tile wins; shapes within 2% of it (rounding to even pixels) count
     * as equally good, and then more columns win: side by side reads better than stacked. */
    int count = (int)(n ? n : 1);
    long long best = 0;
    for (int c = 1; c <= count; c++) {
        int r = (count + c - 1) / c;
        long long area = fitted_area(even_down(width / c), even_down(height / r), aspect_w, aspect_h);
        if (area > best)
            best = area;
    }
    int best_cols = 1, best_rows = count;
    for (int c = 1; c <= count; c++) {
        int r = (count + c - 1) / c;
        long long area = fitted_area(even_down(width / c), even_down(height / r), aspect_w, aspect_h);
        if (area * 50 >= best * 49) {
            best_cols = c;
            best_rows = r;
        }
    }
    *cols = best_cols;
    *rows = best_rows;
}

static void grid(const struct cap_layout_request *req, struct cap_rect area, size_t n,
                 struct cap_rect *cells)
{
    int cols, rows;
    cap_layout_grid_shape(area.w, area.h, n, req->aspect_w, req->aspect_h, &cols, &rows);
    int cell_w = even_down(area.w / cols), cell_h = even_down(area.h / rows);
    int y0 = area.y + even_down((area.h - rows * cell_h) / 2);
    for (size_t i = 0; i < n; i++) {
        int row = (int)(i / (size_t)cols), col = (int)(i % (size_t)cols);
        /* The last row may be short: centre what it holds. */
        int in_row = row == rows - 1 ? (int)(n - (size_t)row * (size_t)cols) : cols;
        int x0 = area.x + even_down((area.w - in_row * cell_w) / 2);
        cells[i] = (struct cap_rect){x0 + col * cell_w, y0 + row * cell_h, cell_w, cell_h};
    }
}

/* One tile large, the others in a strip along the bottom, centred. */
static void focus(const struct cap_layout_request *req, struct cap_rect *cells)
{
    int strip_h = even_down(req->height / CAP_LAYOUT_STRIP_DIVISOR);
    size_t others = req->tiles - 1;
    int aw = req->aspect_w > 0 ? req->aspect_w : 16, ah = req->aspect_h > 0 ? req->aspect_h : 9;
    int tile_w = even_down((int)((long long)strip_h * aw / ah));
    if ((long long)tile_w * (long long)others > req->width)
        tile_w = even_down(req->width / (int)others);
    if (tile_w < 2)
        tile_w = 2; /* hundreds of tiles: those past the edge get no room (w = 0) */
    int x0 = tile_w * (int)others < req->width ? even_down((req->width - tile_w * (int)others) / 2) : 0;
    int y = req->height - strip_h;
    size_t k = 0;
    for (size_t i = 0; i < req->tiles; i++) {
        if ((int)i == req->focus) {
            cells[i] = (struct cap_rect){0, 0, req->width, y};
            continue;
        }
        int x = x0 + (int)k * tile_w;
        bool room = x + tile_w <= req->width;
        cells[i] = (struct cap_rect){room ? x : even_down(req->width), y, room ? tile_w : 0, strip_h};
        k++;
    }
}

int cap_layout_cells(const struct cap_layout_request *req, struct cap_rect *cells)
{
    if (req->width < 16 || req->height < 16 || (req->width & 1) || (req->height & 1) ||
        req->tiles > CAP_LAYOUT_MAX_TILES)
        return CAP_EINVAL;
    if (req->tiles == 0)
        return 0;
    bool focused = req->layout != CAP_LAYOUT_GRID && req->layout != CAP_LAYOUT_DEFAULT &&
                   req->focus >= 0 && (size_t)req->focus < req->tiles;
    if (focused && req->tiles == 1) {
        cells[0] = (struct cap_rect){0, 0, req->width, req->height};
        return 0;
    }
    if (focused) {
        focus(req, cells);
        return 0;
    }
    grid(req, (struct cap_rect){0, 0, req->width, req->height}, req->tiles, cells);
    return 0;
}
