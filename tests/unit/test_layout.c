/* compose layout geometry: grid shapes, cells, aspect-kept fitting, focus layouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capstan/error.h"
#include "media/layout.h"

static void assert_rect(struct cap_rect r, int x, int y, int w, int h)
{
    if (r.x != x || r.y != y || r.w != w || r.h != h)
        fail_msg("rect {%d,%d,%d,%d} != {%d,%d,%d,%d}", r.x, r.y, r.w, r.h, x, y, w, h);
}

static struct cap_layout_request grid_of(size_t n, int w, int h)
{
    return (struct cap_layout_request){.layout = CAP_LAYOUT_GRID, .width = w, .height = h, .tiles = n, .focus = -1};
}

static void test_grid_shapes_give_each_tile_the_most_area(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        int cols, rows;
    } cases[] = {
        {1, 1, 1}, {2, 2, 1}, {3, 2, 2}, {4, 2, 2}, {5, 3, 2}, {6, 3, 2}, {7, 3, 3}, {9, 3, 3}, {10, 4, 3}, {16, 4, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int cols, rows;
        cap_layout_grid_shape(1280, 720, cases[i].n, 16, 9, &cols, &rows);
        if (cols != cases[i].cols || rows != cases[i].rows)
            fail_msg("%zu tiles: %dx%d, expected %dx%d", cases[i].n, cols, rows, cases[i].cols, cases[i].rows);
    }
}

static void test_grid_portrait_content_prefers_columns(void **state)
{
    (void)state;
    int cols, rows;
    /* Two 9:16 phones on a 16:9 canvas: side by side, never stacked. */
    cap_layout_grid_shape(1280, 720, 2, 9, 16, &cols, &rows);
    assert_int_equal(cols, 2);
    assert_int_equal(rows, 1);
    /* Two 16:9 cameras on a portrait canvas: stacked. */
    cap_layout_grid_shape(720, 1280, 2, 16, 9, &cols, &rows);
    assert_int_equal(cols, 1);
    assert_int_equal(rows, 2);
}

static void test_grid_of_four_is_quadrants(void **state)
{
    (void)state;
    struct cap_layout_request req = grid_of(4, 1280, 720);
    struct cap_rect cells[4];
    assert_int_equal(cap_layout_cells(&req, cells), 0);
    assert_rect(cells[0], 0, 0, 640, 360);
    assert_rect(cells[1], 640, 0, 640, 360);
    assert_rect(cells[2], 0, 360, 640, 360);
    assert_rect(cells[3], 640, 360, 640, 360);
}

static void test_grid_short_last_row_is_centred(void **state)
{
    (void)state;
    struct cap_layout_request req = grid_of(3, 640, 360);
    struct cap_rect cells[3];
    assert_int_equal(cap_layout_cells(&req, cells), 0);
    assert_rect(cells[0], 0, 0, 320, 180);
    assert_rect(cells[1], 320, 0, 320, 180);
    assert_rect(cells[2], 160, 180, 320, 180);
    /* Five on 1280x720: 3 + 2, the two centred, cells of 426x360 (1280 / 3 made even). */
    req = grid_of(5, 1280, 720);
    struct cap_rect five[5];
    assert_int_equal(cap_layout_cells(&req, five), 0);
    assert_rect(five[0], 0, 0, 426, 360);
    assert_rect(five[2], 852, 0, 426, 360);
    assert_rect(five[3], 214, 360, 426, 360);
    assert_rect(five[4], 640, 360, 426, 360);
}

static void test_single_tile_fills_the_canvas(void **state)
{
    (void)state;
    struct cap_layout_request req = grid_of(1, 1280, 720);
    struct cap_rect cell;
    assert_int_equal(cap_layout_cells(&req, &cell), 0);
    assert_rect(cell, 0, 0, 1280, 720);
    req.layout = CAP_LAYOUT_SPEAKER;
    req.focus = 0;
    assert_int_equal(cap_layout_cells(&req, &cell), 0);
    assert_rect(cell, 0, 0, 1280, 720);
}

static void test_fit_keeps_aspect_centred_and_even(void **state)
{
    (void)state;
    struct cap_rect cell = {100, 50, 640, 360};
    assert_rect(cap_layout_fit(cell, 1280, 720), 100, 50, 640, 360);    /* same aspect */
    assert_rect(cap_layout_fit(cell, 640, 480), 180, 50, 480, 360);     /* 4:3: pillarbox */
    assert_rect(cap_layout_fit(cell, 1000, 200), 100, 166, 640, 128);   /* wide: letterbox */
    assert_rect(cap_layout_fit(cell, 360, 640), 318, 50, 202, 360);     /* portrait, odd sizes made even */
    assert_rect(cap_layout_fit(cell, 0, 0), 100, 50, 640, 360);         /* unknown size: the cell */
}

static void test_speaker_layout_puts_focus_above_a_centred_strip(void **state)
{
    (void)state;
    struct cap_layout_request req = {.layout = CAP_LAYOUT_SPEAKER, .width = 1280, .height = 720, .tiles = 4, .focus = 2};
    struct cap_rect cells[4];
    assert_int_equal(cap_layout_cells(&req, cells), 0);
    assert_rect(cells[2], 0, 0, 1280, 576);
    /* strip: 144 high, tiles 256 wide (16:9), three centred: x0 = (1280 - 768) / 2 */
    assert_rect(cells[0], 256, 576, 256, 144);
    assert_rect(cells[1], 512, 576, 256, 144);
    assert_rect(cells[3], 768, 576, 256, 144);
}

static void test_crowded_strip_shrinks_tiles_to_fit(void **state)
{
    (void)state;
    struct cap_layout_request req = {.layout = CAP_LAYOUT_PINNED, .width = 1280, .height = 720, .tiles = 11, .focus = 0};
    struct cap_rect cells[11];
    assert_int_equal(cap_layout_cells(&req, cells), 0);
    for (size_t i = 1; i < 11; i++) {
        assert_int_equal(cells[i].w, 128);
        assert_true(cells[i].x + cells[i].w <= 1280);
        assert_int_equal(cells[i].x % 2, 0);
    }
}

static void test_focus_without_a_focus_is_the_grid(void **state)
{
    (void)state;
    struct cap_layout_request req = {.layout = CAP_LAYOUT_SCREENSHARE, .width = 640, .height = 360, .tiles = 3, .focus = -1};
    struct cap_rect cells[3];
    assert_int_equal(cap_layout_cells(&req, cells), 0);
    assert_rect(cells[2], 160, 180, 320, 180);
    req.focus = 7; /* out of range is no focus either */
    assert_int_equal(cap_layout_cells(&req, cells), 0);
    assert_rect(cells[0], 0, 0, 320, 180);
}

static void test_bad_canvases_are_refused(void **state)
{
    (void)state;
    struct cap_rect cells[2];
    struct cap_layout_request req = grid_of(2, 641, 360);
    assert_int_equal(cap_layout_cells(&req, cells), CAP_EINVAL);
    req = grid_of(2, 8, 8);
    assert_int_equal(cap_layout_cells(&req, cells), CAP_EINVAL);
    req = grid_of(CAP_LAYOUT_MAX_TILES + 1, 1280, 720);
    assert_int_equal(cap_layout_cells(&req, cells), CAP_EINVAL);
    req = grid_of(0, 1280, 720);
    assert_int_equal(cap_layout_cells(&req, cells), 0);
}

static void test_every_cell_stays_inside_the_canvas(void **state)
{
    (void)state;
    static struct cap_rect cells[CAP_LAYOUT_MAX_TILES];
    static const int sizes[][2] = {{1280, 720}, {640, 360}, {16, 16}, {1920, 1080}, {720, 1280}};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (size_t n = 1; n <= CAP_LAYOUT_MAX_TILES; n += n < 20 ? 1 : 37) {
            for (int focused = 0; focused < 2; focused++) {
                struct cap_layout_request req = {.layout = focused ? CAP_LAYOUT_SPEAKER : CAP_LAYOUT_GRID,
                                                 .width = sizes[s][0], .height = sizes[s][1], .tiles = n,
                                                 .focus = focused ? (int)(n / 2) : -1};
                assert_int_equal(cap_layout_cells(&req, cells), 0);
                for (size_t i = 0; i < n; i++) {
                    struct cap_rect r = cells[i];
                    if (!(r.x + r.w <= req.width && r.y + r.h <= req.height))
                        fail_msg("%dx%d, %zu tiles, focus %d: cell %zu {%d,%d,%d,%d}", req.width, req.height, n,
                                 req.focus, i, r.x, r.y, r.w, r.h);
                    assert_true(r.x >= 0 && r.y >= 0 && r.w >= 0 && r.h >= 0);
                    assert_true(r.x + r.w <= req.width && r.y + r.h <= req.height);
                    assert_true(r.x % 2 == 0 && r.y % 2 == 0 && r.w % 2 == 0 && r.h % 2 == 0);
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_shapes_give_each_tile_the_most_area),
        cmocka_unit_test(test_grid_portrait_content_prefers_columns),
        cmocka_unit_test(test_grid_of_four_is_quadrants),
        cmocka_unit_test(test_grid_short_last_row_is_centred),
        cmocka_unit_test(test_single_tile_fills_the_canvas),
        cmocka_unit_test(test_fit_keeps_aspect_centred_and_even),
        cmocka_unit_test(test_speaker_layout_puts_focus_above_a_centred_strip),
        cmocka_unit_test(test_crowded_strip_shrinks_tiles_to_fit),
        cmocka_unit_test(test_focus_without_a_focus_is_the_grid),
        cmocka_unit_test(test_bad_canvases_are_refused),
        cmocka_unit_test(test_every_cell_stays_inside_the_canvas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
