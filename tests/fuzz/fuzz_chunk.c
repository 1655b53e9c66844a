/* Fuzz target: the chunk reader (header, records, index, seek) and repair, over arbitrary
 * file contents. */
#include "capstan/track.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_all(struct cap_chunk_reader *r)
{
    struct cap_record rec;
    volatile uint8_t sink = 0;
    int got;
    int budget = 100000;
    while (budget-- > 0 && (got = cap_chunk_next(r, &rec)) != 0) {
        if (got == CAP_ECHECKSUM)
            continue;
        if (got < 0)
            break;
        for (size_t i = 0; i < rec.len; i++)
            sink ^= rec.data[i];
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-chunk", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    struct cap_chunk_reader *r;
    if (cap_chunk_open_fd(&r, fd) == 0) {
        read_all(r);
        const struct cap_chunk_summary *s = cap_chunk_summary(r);
        cap_chunk_seek(r, s->first_arrival_ns + (s->last_arrival_ns - s->first_arrival_ns) / 2);
        read_all(r);
        cap_chunk_seek(r, INT64_MIN);
        read_all(r);
        cap_chunk_close(r);
    }
    /* Repair works on a path; give it the memfd's. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct cap_chunk_repair_report rep;
    if (cap_chunk_repair(path, &rep) == 0 && !rep.removed && cap_chunk_open_fd(&r, fd) == 0) {
        read_all(r);
        cap_chunk_close(r);
    }
    close(fd);
    return 0;
}
