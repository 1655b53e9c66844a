/* Canvas drawing for compose (compose_draw.h). */
#include "media/compose_draw.h"

#include "capstan/error.h"

#include <fontconfig/fontconfig.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <libswscale/swscale.h>
#include <stddef.h>
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

/* Decodes one UTF-8 sequence at *s (advancing it); malformed bytes give U+FFFD. */
static uint32_t next_codepoint(const unsigned char **s)
{
    const unsigned char *p = *s;
    uint32_t c = *p++;
    int more = c >= 0xf0 && c < 0xf8 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (c >= 0x80 && more == 0) {
        *s = p;
        return 0xfffd;
    }
    c &= 0x7f >> more;
    for (int i = 0; i < more; i++, p++) {
        if ((*p & 0xc0) != 0x80) {
            *s = p;
            return 0xfffd;
        }
        c = c << 6 | (*p & 0x3f);
    }
    *s = p;
    return c;
}

/* The file fontconfig gives for "sans-serif" (DejaVu Sans on Debian with fonts-dejavu-core).
 * A configuration of our own, destroyed after: fontconfig's process-wide default is never
 * freed, and a compose asks for a font only when a placeholder changes size. */
static int sans_font(char *path, size_t size)
{
    FcConfig *cfg = FcInitLoadConfigAndFonts();
    if (!cfg)
        return CAP_ENOENT;
    FcPattern *want = FcNameParse((const FcChar8 *)"sans-serif");
    if (!want) {
        FcConfigDestroy(cfg);
        return CAP_ENOMEM;
    }
    FcConfigSubstitute(cfg, want, FcMatchPattern);
    FcDefaultSubstitute(want);
    FcResult res;
    FcPattern *got = FcFontMatch(cfg, want, &res);
    FcPatternDestroy(want);
    FcChar8 *file = NULL;
    int err = CAP_ENOENT;
    if (got && FcPatternGetString(got, FC_FILE, 0, &file) == FcResultMatch && file &&
        strlen((const char *)file) < size) {
        strcpy(path, (const char *)file);
        err = 0;
    }
    if (got)
        FcPatternDestroy(got);
    FcConfigDestroy(cfg);
    return err;
}

/* Blends a glyph's coverage into the luma plane as white (chroma stays neutral grey). */
static void blend_glyph(AVFrame *f, const FT_Bitmap *bm, int x0, int y0)
{
    for (unsigned row = 0; row < bm->rows; row++) {
        int y = y0 + (int)row;
        if (y < 0 || y >= f->height)
            continue;
        const uint8_t *src = bm->buffer + (ptrdiff_t)row * bm->pitch;
        uint8_t *dst = f->data[0] + (size_t)y * f->linesize[0];
        for (unsigned col = 0; col < bm->width; col++) {
            int x = x0 + (int)col;
            if (x < 0 || x >= f->width || src[col] == 0)
                continue;
            dst[x] = (uint8_t)(dst[x] + ((235 - dst[x]) * src[col] + 127) / 255);
        }
    }
}

/* Walks name's glyphs from pen along the baseline, blending each into out (NULL: only
 * measuring). Returns where the pen ends, or -1 when a glyph cannot be loaded. */
static long pen_line(FT_Face face, const char *name, AVFrame *out, long pen, long baseline)
{
    FT_UInt prev = 0;
    for (const unsigned char *s = (const unsigned char *)name; *s;) {
        FT_UInt gi = FT_Get_Char_Index(face, next_codepoint(&s));
        FT_Vector k;
        if (prev && gi && FT_HAS_KERNING(face) && !FT_Get_Kerning(face, prev, gi, FT_KERNING_DEFAULT, &k))
            pen += k.x >> 6;
        if (FT_Load_Glyph(face, gi, out ? FT_LOAD_RENDER : FT_LOAD_DEFAULT))
            return -1;
        if (out) {
            if (face->glyph->bitmap.pixel_mode != FT_PIXEL_MODE_GRAY)
                return -1;
            blend_glyph(out, &face->glyph->bitmap, (int)(pen + face->glyph->bitmap_left),
                        (int)(baseline - face->glyph->bitmap_top));
        }
        pen += face->glyph->advance.x >> 6;
        prev = gi;
    }
    return pen;
}

/* name in white, centred on a placeholder-grey tile already allocated in out; FreeType
 * renders the glyphs of the font fontconfig picks for sans-serif. */
static int render_text(AVFrame *out, const char *name)
{
    int w = out->width, h = out->height;
    /* Text about an eighth of the tile's height, smaller when the name is long. */
    size_t len = strlen(name);
    int px = h / 8;
    if (len > 0 && (long)px * (long)len * 6 > (long)w * 9) /* a glyph is about 0.6 em wide */
        px = (int)((long)w * 3 / 2 / (long)len);
    if (px < 6)
        px = 6;
    char path[4096];
    int err = sans_font(path, sizeof(path));
    if (err)
        return err;
    FT_Library ft;
    if (FT_Init_FreeType(&ft))
        return CAP_EUNSUPPORTED;
    FT_Face face;
    err = CAP_EUNSUPPORTED;
    if (FT_New_Face(ft, path, 0, &face))
        goto done_lib;
    if (FT_Set_Pixel_Sizes(face, 0, (FT_UInt)px))
        goto done;
    /* Measured first (advances and kerning), then drawn centred the same way. */
    long width = pen_line(face, name, NULL, 0, 0);
    if (width < 0)
        goto done;
    long ascender = face->size->metrics.ascender >> 6, descender = face->size->metrics.descender >> 6;
    long baseline = ((long)h - (ascender - descender)) / 2 + ascender;
    if (pen_line(face, name, out, ((long)w - width) / 2, baseline) < 0)
        goto done;
    err = 0;
done:
    FT_Done_Face(face);
done_lib:
    FT_Done_FreeType(ft);
    return err;
}

int cap_placeholder_render(AVFrame **out, int w, int h, const char *name, bool *with_text)
{
    *with_text = false;
    AVFrame *f = av_frame_alloc();
    if (!f)
        return CAP_ENOMEM;
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer(f, 0) < 0) {
        av_frame_free(&f);
        return CAP_ENOMEM;
    }
    cap_draw_fill(f, (struct cap_rect){0, 0, w, h}, CAP_PLACEHOLDER_Y, CAP_PLACEHOLDER_U, CAP_PLACEHOLDER_V);
    if (name && *name) {
        if (render_text(f, name) == 0)
            *with_text = true;
        else /* a half-drawn name is worse than none */
            cap_draw_fill(f, (struct cap_rect){0, 0, w, h}, CAP_PLACEHOLDER_Y, CAP_PLACEHOLDER_U,
                          CAP_PLACEHOLDER_V);
    }
    *out = f;
    return 0;
}
