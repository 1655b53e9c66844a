/* Chunk and track readers (capstan/track.h). Reads through a bounded window with pread
 * (measured faster than mmap: the copy lands in a window that stays in cache, where page
 * faults and cache misses on a mapping cost more). Every record's checksum is verified,
 * once per track reader: a sealed chunk it read whole and intact is not checksummed again
 * when a rewind reads the same file again. A sealed chunk's index serves seeks, and after a
 * damaged record the reader resynchronises on the next whole one instead of giving up. */
#include "capstan/track.h"

#include "track/chunk_format.h"
#include "track/writer.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WINDOW_DEFAULT (256u << 10)
#define WINDOW_MAX (CAP_CHUNK_INDEX_MAX + CAP_CHUNK_RECORD_OVERHEAD + 4096)

struct cap_chunk_reader {
    int fd;
    uint64_t file_size;
    struct cap_track_info info;
    struct cap_chunk_summary summary;
    uint64_t data_start;       /* first record */
    uint64_t data_end;         /* the index record if sealed, else the end of the file */
    uint64_t pos;              /* next record */
    uint8_t *window;
    size_t window_cap;
    uint64_t window_off;
    size_t window_len;
    uint8_t *index_body;       /* sealed chunks: the index record's body */
    size_t index_len;
    struct stat st;            /* identity: device, inode, size, modification time */
    bool trusted;              /* read whole and intact before by the same track reader */
    bool in_order_from_start;  /* no seek so far: every record was read and checked */
    bool damage_seen;
    bool verified_whole;       /* sealed, read to its end in order, every record intact */
};

/* Makes bytes [off, off + n) available; returns a pointer and sets *avail to how many of
 * them exist (fewer than n at the end of the file), or NULL on an I/O error. */
static const uint8_t *window_get(struct cap_chunk_reader *r, uint64_t off, size_t n, size_t *avail,
                                 int *err)
{
    if (off >= r->window_off && off + n <= r->window_off + r->window_len) {
        *avail = n;
        return r->window + (off - r->window_off);
    }
    if (n > WINDOW_MAX)
        n = WINDOW_MAX;
    if (n > r->window_cap) {
        uint8_t *grown = realloc(r->window, n);
        if (!grown) {
            *err = CAP_ENOMEM;
            return NULL;
        }
        r->window = grown;
        r->window_cap = n;
    }
    size_t want = r->window_cap;
    if (off < r->file_size && r->file_size - off < want)
        want = (size_t)(r->file_size - off);
    ssize_t got = off < r->file_size ? cap_pread_full(r->fd, r->window, want, (off_t)off) : 0;
    if (got < 0) {
        *err = (int)got;
        return NULL;
    }
    r->window_off = off;
    r->window_len = (size_t)got;
    *avail = (size_t)got < n ? (size_t)got : n;
    return r->window;
}

/* Checks the record at off; returns its total size or a negative code (see
 * cap_chunk_check_record); *body points at its bytes when whole. */
static long record_at(struct cap_chunk_reader *r, uint64_t off, uint64_t end,
                      struct cap_chunk_record_header *hdr, const uint8_t **rec)
{
    if (off >= end)
        return CAP_ETRUNC;
    size_t avail;
    int err = 0;
    const uint8_t *p = window_get(r, off, CAP_CHUNK_RECORD_HEADER_LEN, &avail, &err);
    if (!p)
        return err;
    if (avail < CAP_CHUNK_RECORD_HEADER_LEN || end - off < CAP_CHUNK_RECORD_HEADER_LEN)
        return CAP_ETRUNC;
    if ((err = cap_chunk_decode_record_header(p, hdr)))
        return err;
    size_t total = CAP_CHUNK_RECORD_OVERHEAD + (size_t)hdr->length;
    if (end - off < total)
        return CAP_ETRUNC;
    p = window_get(r, off, total, &avail, &err);
    if (!p)
        return err;
    if (r->trusted) {
        /* These bytes passed their checksums in this same, unchanged, immutable file. */
        if (avail < total)
            return CAP_ETRUNC;
        *rec = p;
        return (long)total;
    }
    long checked = cap_chunk_check_record(p, avail, hdr);
    if (checked > 0)
        *rec = p;
    return checked;
}

/* The first offset after `from` where a whole, valid record starts, or 0 if none. */
static uint64_t find_next_record(struct cap_chunk_reader *r, uint64_t from, uint64_t end)
{
    struct cap_chunk_record_header hdr;
    const uint8_t *rec;
    for (uint64_t off = from; off + CAP_CHUNK_RECORD_OVERHEAD <= end; off++) {
        long n = record_at(r, off, end, &hdr, &rec);
        if (n > 0)
            return off;
        if (n == CAP_ENOMEM || n == CAP_EIO)
            return 0;
    }
    return 0;
}

static int load_index(struct cap_chunk_reader *r)
{
    if (r->file_size < r->data_start + CAP_CHUNK_RECORD_OVERHEAD + CAP_CHUNK_FOOTER_LEN)
        return 0;
    uint8_t footer[CAP_CHUNK_FOOTER_LEN];
    ssize_t got = cap_pread_full(r->fd, footer, sizeof(footer),
                                 (off_t)(r->file_size - CAP_CHUNK_FOOTER_LEN));
    if (got != (ssize_t)sizeof(footer))
        return got < 0 ? (int)got : 0;
    int64_t index_off = cap_chunk_decode_footer(footer);
    if (index_off < (int64_t)r->data_start)
        return 0;
    uint64_t end = r->file_size - CAP_CHUNK_FOOTER_LEN;
    struct cap_chunk_record_header hdr;
    const uint8_t *rec;
    long n = record_at(r, (uint64_t)index_off, end, &hdr, &rec);
    if (n <= 0 || hdr.type != CAP_RECORD_INDEX || (uint64_t)index_off + (uint64_t)n != end)
        return 0;
    struct cap_chunk_summary s;
    if (cap_chunk_decode_index(rec + CAP_CHUNK_RECORD_HEADER_LEN, hdr.length, &s) != 0)
        return 0;
    r->index_body = malloc(hdr.length);
    if (!r->index_body)
        return CAP_ENOMEM;
    memcpy(r->index_body, rec + CAP_CHUNK_RECORD_HEADER_LEN, hdr.length);
    r->index_len = hdr.length;
    r->summary = s;
    r->data_end = (uint64_t)index_off;
    return 0;
}

int cap_chunk_open_fd(struct cap_chunk_reader **out, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return CAP_EFORMAT;
    struct cap_chunk_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return CAP_ENOMEM;
    r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (r->fd < 0) {
        free(r);
        return -errno;
    }
    r->file_size = (uint64_t)st.st_size;
    r->st = st;
    r->in_order_from_start = true;
    r->window_cap = WINDOW_DEFAULT;
    r->window = malloc(r->window_cap);
    int err = r->window ? 0 : CAP_ENOMEM;
    size_t avail = 0;
    const uint8_t *p = NULL;
    if (!err) {
        size_t want = CAP_CHUNK_PREFIX_LEN + CAP_CHUNK_HEADER_JSON_MAX + 4;
        p = window_get(r, 0, want, &avail, &err);
    }
    if (p) {
        long n = cap_chunk_decode_header(p, avail, &r->info);
        if (n < 0)
            err = (int)n;
        else
            r->data_start = (uint64_t)n;
    }
    if (!err) {
        r->data_end = r->file_size;
        r->pos = r->data_start;
        err = load_index(r);
    }
    if (err) {
        cap_chunk_close(r);
        return err;
    }
    *out = r;
    return 0;
}

int cap_chunk_open(struct cap_chunk_reader **out, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? CAP_ENOENT : -errno;
    int err = cap_chunk_open_fd(out, fd);
    close(fd);
    return err;
}

void cap_chunk_close(struct cap_chunk_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->window);
    free(r->index_body);
    free(r);
}

const struct cap_track_info *cap_chunk_info(const struct cap_chunk_reader *r)
{
    return &r->info;
}

const struct cap_chunk_summary *cap_chunk_summary(const struct cap_chunk_reader *r)
{
    return &r->summary;
}

int cap_chunk_next(struct cap_chunk_reader *r, struct cap_record *rec)
{
    if (r->pos >= r->data_end) {
        r->verified_whole = r->summary.sealed && r->in_order_from_start && !r->damage_seen;
        return 0;
    }
    struct cap_chunk_record_header hdr;
    const uint8_t *p;
    long n = record_at(r, r->pos, r->data_end, &hdr, &p);
    if (n < 0)
        r->damage_seen = true;
    if (n == CAP_ENOMEM || cap_is_errno((int)n))
        return (int)n; /* out of memory or an I/O errno */
    if (n < 0) {
        /* Damage with a whole record after it is a bad record; without, a torn tail. */
        uint64_t next = find_next_record(r, r->pos + 1, r->data_end);
        if (next) {
            r->pos = next;
            return CAP_ECHECKSUM;
        }
        r->pos = r->data_end;
        return r->summary.sealed ? CAP_ECHECKSUM : CAP_ETRUNC;
    }
    if (hdr.type == CAP_RECORD_INDEX) {
        /* An unsealed chunk whose footer was torn after its index: the data ends here. */
        r->pos = r->data_end;
        return 0;
    }
    rec->type = hdr.type;
    rec->flags = hdr.flags;
    rec->arrival_ns = hdr.arrival_ns;
    rec->data = p + CAP_CHUNK_RECORD_HEADER_LEN;
    rec->len = hdr.length;
    rec->offset = r->pos;
    r->pos += (uint64_t)n;
    return 1;
}

int cap_chunk_seek(struct cap_chunk_reader *r, int64_t arrival_ns)
{
    uint64_t start = r->data_start;
    r->in_order_from_start = false;
    if (r->index_body) {
        uint32_t lo = 0, hi = r->summary.index_entries;
        /* Last entry strictly before t: every record from it on may still be < t. */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            struct cap_chunk_index_entry e;
            cap_chunk_index_entry_at(r->index_body, mid, &e);
            if (e.arrival_ns < arrival_ns)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0) {
            struct cap_chunk_index_entry e;
            cap_chunk_index_entry_at(r->index_body, lo - 1, &e);
            if (e.offset >= r->data_start && e.offset < r->data_end)
                start = e.offset;
        }
    }
    r->pos = start;
    for (;;) {
        uint64_t before = r->pos;
        struct cap_record rec;
        int got = cap_chunk_next(r, &rec);
        if (got == CAP_ECHECKSUM)
            continue;
        if (got <= 0)
            return got == CAP_ETRUNC ? 0 : got;
        if (rec.arrival_ns >= arrival_ns) {
            r->pos = before;
            return 0;
        }
    }
}

/* ---- track folders ---- */

/* A chunk this track reader read whole and intact: the file it was. */
struct verified_chunk {
    bool verified;
    struct stat st;
};

struct cap_track_reader {
    char dir[PATH_MAX];
    uint32_t *seqs;
    unsigned count;
    unsigned current;      /* index into seqs of the open chunk */
    struct cap_chunk_reader *chunk;
    struct cap_track_info info;
    struct verified_chunk *verified; /* one per chunk */
};

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int open_chunk_at(struct cap_track_reader *t, unsigned i)
{
    if (t->chunk && t->chunk->verified_whole) {
        t->verified[t->current].verified = true;
        t->verified[t->current].st = t->chunk->st;
    }
    cap_chunk_close(t->chunk);
    t->chunk = NULL;
    t->current = i;
    if (i >= t->count)
        return 0;
    char path[PATH_MAX + 32];
    cap_track_chunk_path(path, sizeof(path), t->dir, t->seqs[i]);
    int err = cap_chunk_open(&t->chunk, path);
    if (!err && t->verified[i].verified)
        t->chunk->trusted =
            t->chunk->summary.sealed && same_file(&t->verified[i].st, &t->chunk->st);
    return err;
}

int cap_track_open(struct cap_track_reader **out, const char *dir)
{
    if (strlen(dir) >= PATH_MAX)
        return CAP_EINVAL;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? CAP_ENOENT : -errno;
    struct cap_track_reader *t = calloc(1, sizeof(*t));
    if (!t) {
        closedir(d);
        return CAP_ENOMEM;
    }
    strcpy(t->dir, dir);
    unsigned cap = 0;
    int err = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint32_t seq = cap_chunk_seq_of_name(e->d_name);
        if (seq == 0)
            continue;
        if (t->count == cap) {
            cap = cap ? cap * 2 : 16;
            uint32_t *grown = realloc(t->seqs, cap * sizeof(*grown));
            if (!grown) {
                err = CAP_ENOMEM;
                break;
            }
            t->seqs = grown;
        }
        t->seqs[t->count++] = seq;
    }
    closedir(d);
    if (!err && t->count == 0)
        err = CAP_ENOENT;
    if (!err && !(t->verified = calloc(t->count, sizeof(*t->verified))))
        err = CAP_ENOMEM;
    if (!err) {
        qsort(t->seqs, t->count, sizeof(*t->seqs), compare_u32);
        err = open_chunk_at(t, 0);
    }
    if (err) {
        cap_track_close(t);
        return err;
    }
    t->info = *cap_chunk_info(t->chunk);
    *out = t;
    return 0;
}

void cap_track_close(struct cap_track_reader *t)
{
    if (!t)
        return;
    cap_chunk_close(t->chunk);
    free(t->seqs);
    free(t->verified);
    free(t);
}

const struct cap_track_info *cap_track_info(const struct cap_track_reader *t)
{
    return &t->info;
}

unsigned cap_track_chunk_count(const struct cap_track_reader *t)
{
    return t->count;
}

int cap_track_next(struct cap_track_reader *t, struct cap_record *rec)
{
    while (t->chunk) {
        int got = cap_chunk_next(t->chunk, rec);
        if (got != 0)
            return got;
        int err = open_chunk_at(t, t->current + 1);
        if (err)
            return err;
    }
    return 0;
}

int cap_track_rewind(struct cap_track_reader *t)
{
    return open_chunk_at(t, 0);
}

int cap_track_seek(struct cap_track_reader *t, int64_t arrival_ns)
{
    for (unsigned i = 0; i < t->count; i++) {
        int err = open_chunk_at(t, i);
        if (err)
            return err;
        const struct cap_chunk_summary *s = cap_chunk_summary(t->chunk);
        if (s->sealed && s->last_arrival_ns < arrival_ns && i + 1 < t->count)
            continue;
        return cap_chunk_seek(t->chunk, arrival_ns);
    }
    return 0;
}
