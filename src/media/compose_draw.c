/* Canvas drawing for compose (compose_draw.h). */
#include "media/compose_draw.h"

#include "capstan/error.h"

#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <string.h>

AVFrame *cap_canvas_new(int w, int h)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return NULL;
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer(f, 0) < 0) {
        av_frame_free(&f);
        return NULL;
    }
    cap_draw_fill(f, (struct cap_rect){0, 0, w, h}, 16, 128, 128);
    return f;
}

static bool inside(const AVFrame *canvas, struct cap_rect r)
{
    return r.w >= 2 && r.h >= 2 && r.x >= 0 && r.y >= 0 && r.x + r.w <= canvas->width &&
           r.y + r.h <= canvas->height;
}

void cap_draw_fill(AVFrame *canvas, struct cap_rect r, uint8_t y, uint8_t u, uint8_t v)
{
    if (!inside(canvas, r))
        return;
    for (int row = 0; row < r.h; row++)
        memset(canvas->data[0] + (size_t)(r.y + row) * canvas->linesize[0] + r.x, y, (size_t)r.w);
    for (int row = 0; row < r.h / 2; row++) {
        size_t off1 = (size_t)(r.y / 2 + row) * canvas->linesize[1] + r.x / 2;
        size_t off2 = (size_t)(r.y / 2 + row) * canvas->linesize[2] + r.x / 2;
        memset(canvas->data[1] + off1, u, (size_t)r.w / 2);
        memset(canvas->data[2] + off2, v, (size_t)r.w / 2);
    }
}

int cap_draw_scaled(struct SwsContext **sws, AVFrame *canvas, struct cap_rect r, const AVFrame *src)
{
    if (!inside(canvas, r) || src->width <= 0 || src->height <= 0)
        return 0;
    *sws = sws_getCachedContext(*sws, src->width, src->height, (enum AVPixelFormat)src->format, r.w, r.h,
                                AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
    if (!*sws)
        return CAP_EUNSUPPORTED;
    uint8_t *dst[4] = {
        canvas->data[0] + (size_t)r.y * canvas->linesize[0] + r.x,
        canvas->data[1] + (size_t)(r.y / 2) * canvas->linesize[1] + r.x / 2,
        canvas->data[2] + (size_t)(r.y / 2) * canvas->linesize[2] + r.x / 2,
        NULL,
    };
    int stride[4] = {canvas->linesize[0], canvas->linesize[1], canvas->linesize[2], 0};
    int rows = sws_scale(*sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height, dst, stride);
    return rows > 0 ? 0 : CAP_EFORMAT;
}

void cap_draw_copy(AVFrame *canvas, struct cap_rect r, const AVFrame *img)
{
    if (!inside(canvas, r) || img->width != r.w || img->height != r.h || img->format != AV_PIX_FMT_YUV420P)
        return;
    for (int row = 0; row < r.h; row++)
        memcpy(canvas->data[0] + (size_t)(r.y + row) * canvas->linesize[0] + r.x,
               img->data[0] + (size_t)row * img->linesize[0], (size_t)r.w);
    for (int plane = 1; plane <= 2; plane++)
        for (int row = 0; row < r.h / 2; row++)
            memcpy(canvas->data[plane] + (size_t)(r.y / 2 + row) * canvas->linesize[plane] + r.x / 2,
                   img->data[plane] + (size_t)row * img->linesize[plane], (size_t)r.w / 2);
}

/* color -> drawtext -> format -> buffersink, one frame out. */
static int render_text(AVFrame *out, int w, int h, const char *name)
{
    const AVFilter *color = avfilter_get_by_name("color"), *text = avfilter_get_by_name("drawtext"),
                   *format = avfilter_get_by_name("format"), *sink = avfilter_get_by_name("buffersink");
    if (!color || !text || !format || !sink)
        return CAP_EUNSUPPORTED;
    AVFilterGraph *g = avfilter_graph_alloc();
    if (!g)
        return CAP_ENOMEM;
    g->nb_threads = 1;
    int err = CAP_EUNSUPPORTED;
    AVFilterContext *c_src = avfilter_graph_alloc_filter(g, color, "bg");
    AVFilterContext *c_txt = avfilter_graph_alloc_filter(g, text, "name");
    AVFilterContext *c_fmt = avfilter_graph_alloc_filter(g, format, "fmt");
    AVFilterContext *c_out = avfilter_graph_alloc_filter(g, sink, "out");
    char size[32], bg[16];
    snprintf(size, sizeof(size), "%dx%d", w, h);
    snprintf(bg, sizeof(bg), "0x%02x%02x%02x", 0x38, 0x38, 0x38);
    /* Text about a tenth of the tile's height, smaller when the name is long. */
    size_t len = strlen(name);
    int font = h / 8;
    if (len > 0 && (long)font * (long)len * 6 > (long)w * 9) /* a glyph is about 0.6 em wide */
        font = (int)((long)w * 3 / 2 / (long)len);
    if (font < 6)
        font = 6;
    char font_size[16];
    snprintf(font_size, sizeof(font_size), "%d", font);
    if (!c_src || !c_txt || !c_fmt || !c_out)
        goto done;
    if (av_opt_set(c_src, "color", bg, AV_OPT_SEARCH_CHILDREN) < 0 ||
        av_opt_set(c_src, "size", size, AV_OPT_SEARCH_CHILDREN) < 0 || avfilter_init_str(c_src, NULL) < 0)
        goto done;
    if (av_opt_set(c_txt, "text", name, AV_OPT_SEARCH_CHILDREN) < 0 ||
        av_opt_set(c_txt, "expansion", "none", AV_OPT_SEARCH_CHILDREN) < 0 ||
        av_opt_set(c_txt, "fontcolor", "white", AV_OPT_SEARCH_CHILDREN) < 0 ||
        av_opt_set(c_txt, "fontsize", font_size, AV_OPT_SEARCH_CHILDREN) < 0 ||
        av_opt_set(c_txt, "x", "(w-text_w)/2", AV_OPT_SEARCH_CHILDREN) < 0 ||
        av_opt_set(c_txt, "y", "(h-text_h)/2", AV_OPT_SEARCH_CHILDREN) < 0 ||
        avfilter_init_str(c_txt, NULL) < 0)
        goto done;
    if (av_opt_set(c_fmt, "pix_fmts", "yuv420p", AV_OPT_SEARCH_CHILDREN) < 0 || avfilter_init_str(c_fmt, NULL) < 0 ||
        avfilter_init_str(c_out, NULL) < 0)
        goto done;
    if (avfilter_link(c_src, 0, c_txt, 0) < 0 || avfilter_link(c_txt, 0, c_fmt, 0) < 0 ||
        avfilter_link(c_fmt, 0, c_out, 0) < 0 || avfilter_graph_config(g, NULL) < 0)
        goto done;
    if (av_buffersink_get_frame(c_out, out) < 0)
        goto done;
    err = out->width == w && out->height == h && out->format == AV_PIX_FMT_YUV420P ? 0 : CAP_EFORMAT;
    if (err)
        av_frame_unref(out);
done:
    avfilter_graph_free(&g);
    return err;
}

int cap_placeholder_render(AVFrame **out, int w, int h, const char *name, bool *with_text)
{
    *with_text = false;
    AVFrame *f = av_frame_alloc();
    if (!f)
        return CAP_ENOMEM;
    if (name && *name && render_text(f, w, h, name) == 0) {
        *with_text = true;
        *out = f;
        return 0;
    }
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer(f, 0) < 0) {
        av_frame_free(&f);
        return CAP_ENOMEM;
    }
    cap_draw_fill(f, (struct cap_rect){0, 0, w, h}, CAP_PLACEHOLDER_Y, CAP_PLACEHOLDER_U, CAP_PLACEHOLDER_V);
    *out = f;
    return 0;
}
