/* Thumbnails of a composed picture: a JPEG every N ms (thumb_0001.jpg, thumb_0002.jpg, ...
 * as the storage keys of preview-composition-export.md name them) and at the end one
 * contact sheet of them all (evenly chosen when there are more than fit). The canvas is
 * scaled once per thumbnail; the sheet is built from small copies kept in memory. */
#ifndef CAP_MEDIA_THUMBS_H
#define CAP_MEDIA_THUMBS_H

#include <libavutil/frame.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_THUMBS_MAX 100000
#define CAP_THUMBS_SHEET_MAX 64     /* tiles on the contact sheet */

struct cap_thumbs;

struct cap_thumbs_options {
    const char *dir;                /* created if missing */
    int64_t every_ns;               /* > 0 */
    int width;                      /* thumbnail width; height keeps the canvas aspect */
    const char *sheet_path;         /* NULL: dir/contact_sheet.jpg */
};

int cap_thumbs_open(struct cap_thumbs **out, const struct cap_thumbs_options *opt, int canvas_w,
                    int canvas_h, char *why, size_t why_size);
/* The canvas as shown at t_ns (frames in time order): writes the thumbnails that are due. */
int cap_thumbs_offer(struct cap_thumbs *t, const AVFrame *canvas, int64_t t_ns);
/* Writes the contact sheet (if any thumbnail was made) and frees everything. *count gets
 * the thumbnails written; sheet (if not NULL) the sheet's path or "". */
int cap_thumbs_close(struct cap_thumbs *t, unsigned *count, char *sheet, size_t sheet_size);

#endif
