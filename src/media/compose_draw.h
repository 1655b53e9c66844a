/* Drawing on compose's canvas (a YUV 4:2:0 AVFrame): filling rectangles, scaling a decoded
 * picture into a rectangle in one libswscale pass (no intermediate copy), copying a
 * prepared picture, and making placeholder tiles (a peer's display name on a plain
 * background, drawn with FreeType in the font fontconfig picks for sans-serif). */
#ifndef CAP_MEDIA_COMPOSE_DRAW_H
#define CAP_MEDIA_COMPOSE_DRAW_H

#include "media/layout.h"

#include <libavutil/frame.h>
#include <stdbool.h>
#include <stdint.h>

struct SwsContext;

/* Placeholder background: dark grey (RGB 56,56,56), far from any saturated colour. */
#define CAP_PLACEHOLDER_Y 64
#define CAP_PLACEHOLDER_U 128
#define CAP_PLACEHOLDER_V 128

/* A YUV420P canvas of w x h; NULL on allocation failure. */
AVFrame *cap_canvas_new(int w, int h);
void cap_draw_fill(AVFrame *canvas, struct cap_rect r, uint8_t y, uint8_t u, uint8_t v);
/* Scales src into r (src's aspect is the caller's business: r is filled). *sws is reused
 * across calls and replaced when sizes or formats change. */
int cap_draw_scaled(struct SwsContext **sws, AVFrame *canvas, struct cap_rect r, const AVFrame *src);
/* Copies img (exactly r's size, YUV420P) into r. */
void cap_draw_copy(AVFrame *canvas, struct cap_rect r, const AVFrame *img);

/* A w x h YUV420P tile with name (UTF-8) centred on the placeholder background. Without a
 * font (fontconfig finds none) the tile is plain and *with_text is false. */
int cap_placeholder_render(AVFrame **out, int w, int h, const char *name, bool *with_text);

#endif
