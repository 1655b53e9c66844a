/* Thumbnails and the contact sheet (thumbs.h), JPEG by libavcodec's MJPEG encoder. */
#include "media/thumbs.h"

#include "capstan/error.h"
#include "media/compose_draw.h"
#include "util/fs.h"

#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cap_thumbs {
    char dir[4096];
    char sheet_path[4096];
    int64_t every_ns;
    int64_t next_ns;
    int w, h;                       /* thumbnail size */
    int canvas_w, canvas_h;
    struct SwsContext *sws;
    AVFrame *small;                 /* YUV420P thumbnail */
    AVFrame **kept;                 /* copies for the contact sheet */
    size_t kept_count, kept_cap;
    unsigned kept_stride;           /* every kept_stride-th thumbnail is kept */
    unsigned written;
    AVPacket *pkt;
};

static int even(int v)
{
    return v & ~1;
}

/* Encodes a YUV420P picture as one JPEG file. */
static int write_jpeg(const char *path, const AVFrame *pic, AVPacket *pkt)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!codec)
        return CAP_EUNSUPPORTED;
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    if (!ctx)
        return CAP_ENOMEM;
    ctx->width = pic->width;
    ctx->height = pic->height;
    ctx->time_base = (AVRational){1, 25};
    /* Limited-range 4:2:0 as it is, marked as such (MJPEG calls that unofficial). */
    ctx->pix_fmt = AV_PIX_FMT_YUV420P;
    ctx->color_range = AVCOL_RANGE_MPEG;
    ctx->strict_std_compliance = FF_COMPLIANCE_UNOFFICIAL;
    ctx->flags |= AV_CODEC_FLAG_QSCALE;
    ctx->global_quality = FF_QP2LAMBDA * 3;
    int err = CAP_EUNSUPPORTED;
    AVFrame *f = NULL;
    if (avcodec_open2(ctx, codec, NULL) < 0)
        goto done;
    f = av_frame_clone(pic);
    if (!f) {
        err = CAP_ENOMEM;
        goto done;
    }
    f->pts = 0;
    f->quality = ctx->global_quality;
    err = CAP_EIO;
    if (avcodec_send_frame(ctx, f) < 0 || avcodec_receive_packet(ctx, pkt) < 0)
        goto done;
    FILE *fp = fopen(path, "wb");
    if (fp) {
        size_t n = fwrite(pkt->data, 1, (size_t)pkt->size, fp);
        err = fclose(fp) == 0 && n == (size_t)pkt->size ? 0 : CAP_EIO;
    }
    av_packet_unref(pkt);
done:
    av_frame_free(&f);
    avcodec_free_context(&ctx);
    return err;
}

int cap_thumbs_open(struct cap_thumbs **out, const struct cap_thumbs_options *opt, int canvas_w,
                    int canvas_h, char *why, size_t why_size)
{
    *out = NULL;
    if (!opt->dir || opt->every_ns <= 0 || canvas_w < 16 || canvas_h < 16) {
        snprintf(why, why_size, "thumbnails need a folder and an interval");
        return CAP_EINVAL;
    }
    int err = cap_mkdir_p(opt->dir);
    if (err) {
        snprintf(why, why_size, "%s: cannot create: %s", opt->dir, cap_strerror(err));
        return err;
    }
    struct cap_thumbs *t = calloc(1, sizeof(*t));
    if (!t)
        return CAP_ENOMEM;
    snprintf(t->dir, sizeof(t->dir), "%s", opt->dir);
    if (opt->sheet_path)
        snprintf(t->sheet_path, sizeof(t->sheet_path), "%s", opt->sheet_path);
    else
        snprintf(t->sheet_path, sizeof(t->sheet_path), "%s/contact_sheet.jpg", opt->dir);
    t->every_ns = opt->every_ns;
    t->canvas_w = canvas_w;
    t->canvas_h = canvas_h;
    int w = opt->width > 0 ? opt->width : 320;
    if (w > canvas_w)
        w = canvas_w;
    t->w = even(w) < 16 ? 16 : even(w);
    t->h = even((int)((long)t->w * canvas_h / canvas_w));
    if (t->h < 16)
        t->h = 16;
    t->small = cap_canvas_new(t->w, t->h);
    t->pkt = av_packet_alloc();
    if (!t->small || !t->pkt) {
        unsigned n;
        cap_thumbs_close(t, &n, NULL, 0);
        return CAP_ENOMEM;
    }
    *out = t;
    return 0;
}

/* Keeps evenly spaced copies for the sheet, at most twice what it shows: when full, every
 * other copy goes and the spacing doubles. */
static int keep_copy(struct cap_thumbs *t, unsigned index)
{
    if (!t->kept_stride)
        t->kept_stride = 1;
    if (index % t->kept_stride != 0)
        return 0;
    if (t->kept_count == 2 * CAP_THUMBS_SHEET_MAX) {
        size_t k = 0;
        for (size_t i = 0; i < t->kept_count; i++) {
            if (i % 2 == 0)
                t->kept[k++] = t->kept[i];
            else
                av_frame_free(&t->kept[i]);
        }
        t->kept_count = k;
        t->kept_stride *= 2;
        if (index % t->kept_stride != 0)
            return 0;
    }
    if (t->kept_count == t->kept_cap) {
        size_t cap = t->kept_cap ? t->kept_cap * 2 : 16;
        AVFrame **grown = realloc(t->kept, cap * sizeof(*grown));
        if (!grown)
            return CAP_ENOMEM;
        t->kept = grown;
        t->kept_cap = cap;
    }
    AVFrame *copy = cap_canvas_new(t->w, t->h);
    if (!copy)
        return CAP_ENOMEM;
    cap_draw_copy(copy, (struct cap_rect){0, 0, t->w, t->h}, t->small);
    t->kept[t->kept_count++] = copy;
    return 0;
}

int cap_thumbs_offer(struct cap_thumbs *t, const AVFrame *canvas, int64_t t_ns)
{
    if (t_ns < t->next_ns || t->written >= CAP_THUMBS_MAX)
        return 0;
    int err = cap_draw_scaled(&t->sws, t->small, (struct cap_rect){0, 0, t->w, t->h}, canvas);
    if (err)
        return err;
    char path[4200];
    snprintf(path, sizeof(path), "%s/thumb_%04u.jpg", t->dir, t->written + 1);
    if ((err = write_jpeg(path, t->small, t->pkt)) != 0)
        return err;
    unsigned index = t->written++;
    while (t->next_ns <= t_ns)
        t->next_ns += t->every_ns;
    return keep_copy(t, index);
}

/* The sheet: up to CAP_THUMBS_SHEET_MAX thumbnails, evenly chosen, in a near-square grid. */
static int write_sheet(struct cap_thumbs *t)
{
    size_t n = t->kept_count < CAP_THUMBS_SHEET_MAX ? t->kept_count : CAP_THUMBS_SHEET_MAX;
    int cols = 1;
    while ((size_t)cols * (size_t)cols < n)
        cols++;
    int rows = (int)((n + (size_t)cols - 1) / (size_t)cols);
    /* At most 2560 wide: smaller tiles for big sheets. */
    int tile_w = t->w, tile_h = t->h;
    if (tile_w * cols > 2560) {
        tile_w = even(2560 / cols);
        tile_h = even((int)((long)tile_w * t->h / t->w));
    }
    int gap = 4;
    AVFrame *sheet = cap_canvas_new(cols * (tile_w + gap) + gap, rows * (tile_h + gap) + gap);
    if (!sheet)
        return CAP_ENOMEM;
    int err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        size_t pick = n == t->kept_count ? i : i * (t->kept_count - 1) / (n - 1);
        struct cap_rect r = {gap + (int)(i % (size_t)cols) * (tile_w + gap), gap + (int)(i / (size_t)cols) * (tile_h + gap),
                             tile_w, tile_h};
        if (tile_w == t->w)
            cap_draw_copy(sheet, r, t->kept[pick]);
        else
            err = cap_draw_scaled(&t->sws, sheet, r, t->kept[pick]);
    }
    if (!err)
        err = write_jpeg(t->sheet_path, sheet, t->pkt);
    av_frame_free(&sheet);
    return err;
}

int cap_thumbs_close(struct cap_thumbs *t, unsigned *count, char *sheet, size_t sheet_size)
{
    *count = 0;
    if (sheet && sheet_size)
        sheet[0] = '\0';
    if (!t)
        return 0;
    int err = 0;
    if (t->kept_count > 0 && t->pkt) {
        err = write_sheet(t);
        if (!err && sheet)
            snprintf(sheet, sheet_size, "%s", t->sheet_path);
    }
    *count = t->written;
    for (size_t i = 0; i < t->kept_count; i++)
        av_frame_free(&t->kept[i]);
    free(t->kept);
    av_frame_free(&t->small);
    av_packet_free(&t->pkt);
    sws_freeContext(t->sws);
    free(t);
    return err;
}
