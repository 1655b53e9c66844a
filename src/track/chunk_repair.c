/* Repair after a crash: a chunk that was being written may end in a torn record. Cut it at
 * the end of the last whole record and seal it with a rebuilt index. Damage followed by
 * whole records is not a torn tail and is left for a person to look at. */
#include "capstan/track.h"

#include "track/chunk_format.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The chunk's bytes are read whole: repair runs once per chunk after a crash, and chunks
 * are bounded by the writer's rotation size. */
static int read_all(int fd, uint8_t **out, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data)
        return CAP_ENOMEM;
    ssize_t got = cap_pread_full(fd, data, size, 0);
    if (got < 0) {
        free(data);
        return (int)got;
    }
    *out = data;
    *len = (size_t)got;
    return 0;
}

static bool is_sealed(const uint8_t *data, size_t len, size_t data_start)
{
    if (len < data_start + CAP_CHUNK_RECORD_OVERHEAD + CAP_CHUNK_FOOTER_LEN)
        return false;
    int64_t index_off = cap_chunk_decode_footer(data + len - CAP_CHUNK_FOOTER_LEN);
    size_t end = len - CAP_CHUNK_FOOTER_LEN;
    if (index_off < (int64_t)data_start || (uint64_t)index_off > end)
        return false;
    struct cap_chunk_record_header hdr;
    long n = cap_chunk_check_record(data + index_off, end - (size_t)index_off, &hdr);
    return n > 0 && hdr.type == CAP_RECORD_INDEX && (size_t)index_off + (size_t)n == end;
}

static int repair_bytes(int fd, const char *path, const uint8_t *data, size_t len,
                        struct cap_chunk_repair_report *rep)
{
    struct cap_track_info info;
    long header = cap_chunk_decode_header(data, len, &info);
    if (header == CAP_ETRUNC) {
        /* Torn inside the header: no record ever reached the file. */
        if (unlink(path) != 0)
            return -errno;
        rep->removed = true;
        rep->cut_bytes = len;
        return cap_fsync_parent(path);
    }
    if (header < 0)
        return (int)header;
    size_t start = (size_t)header;
    if (is_sealed(data, len, start)) {
        rep->was_sealed = true;
        rep->kept_bytes = len;
        struct cap_chunk_summary s;
        int64_t index_off = cap_chunk_decode_footer(data + len - CAP_CHUNK_FOOTER_LEN);
        if (cap_chunk_decode_index(data + index_off + CAP_CHUNK_RECORD_HEADER_LEN,
                                   len - CAP_CHUNK_FOOTER_LEN - (size_t)index_off -
                                       CAP_CHUNK_RECORD_OVERHEAD,
                                   &s) == 0)
            rep->records = s.rtp_records + s.rtcp_records + s.event_records;
        return 0;
    }

    struct cap_chunk_indexer ix;
    cap_chunk_indexer_init(&ix);
    size_t off = start;
    while (off < len) {
        struct cap_chunk_record_header hdr;
        long n = cap_chunk_check_record(data + off, len - off, &hdr);
        if (n <= 0 || hdr.type == CAP_RECORD_INDEX)
            break;
        cap_chunk_indexer_add(&ix, off, hdr.type, hdr.flags, hdr.arrival_ns,
                              data + off + CAP_CHUNK_RECORD_HEADER_LEN, hdr.length);
        rep->records++;
        off += (size_t)n;
    }
    /* A whole record further on means the damage is in the middle, not a torn tail. */
    for (size_t probe = off + 1; probe + CAP_CHUNK_RECORD_OVERHEAD <= len; probe++) {
        struct cap_chunk_record_header hdr;
        if (cap_chunk_check_record(data + probe, len - probe, &hdr) > 0 &&
            hdr.type != CAP_RECORD_INDEX) {
            cap_chunk_indexer_deinit(&ix);
            return CAP_ECHECKSUM;
        }
    }
    struct cap_buf seal;
    cap_buf_init(&seal, CAP_CHUNK_INDEX_MAX + 4096);
    int err = cap_chunk_indexer_seal(&ix, off, &seal);
    cap_chunk_indexer_deinit(&ix);
    if (!err && ftruncate(fd, (off_t)off) != 0)
        err = -errno;
    if (!err && lseek(fd, (off_t)off, SEEK_SET) < 0)
        err = -errno;
    if (!err)
        err = cap_write_all(fd, seal.data, seal.len);
    if (!err && fsync(fd) != 0)
        err = -errno;
    if (!err) {
        rep->cut_bytes = len - off;
        rep->kept_bytes = off + seal.len;
    }
    cap_buf_deinit(&seal);
    return err;
}

int cap_chunk_repair(const char *path, struct cap_chunk_repair_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? CAP_ENOENT : -errno;
    uint8_t *data = NULL;
    size_t len = 0;
    int err = read_all(fd, &data, &len);
    if (!err)
        err = repair_bytes(fd, path, data, len, rep);
    free(data);
    close(fd);
    return err;
}
