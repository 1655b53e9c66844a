/* The receive floor: what it costs any recorder on this machine just to take RTP out of the
 * kernel. Binds one UDP socket, waits for packets, drains them with recvmmsg in batches of
 * 64, lets them gather for --wait-ms between drains (as capstan's ingest does at low rates)
 * and throws them away: no timestamps, no parsing, no files. With --write DIR it is the
 * least a recorder does: each packet, length first, appended through a 64 KiB buffer to one
 * file per SSRC in DIR (no checksums, no index, no fsync). On SIGINT or SIGTERM it prints
 * one JSON line: packets received and the CPU (user + system) the process used from its
 * first packet on. bench/ingest runs it on the same replay as capstan and ffmpeg, so the
 * CPU ratio a recorder can reach against ffmpeg is bounded by this figure in the same run. */
#include "util/bytes.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PACKET_MAX 2048
#define FILE_BUF (64 << 10)
#define MAX_FILES 4096

struct out_file {
    uint32_t ssrc;
    int fd;
    size_t len;
    unsigned char *buf;
};

static struct out_file files[MAX_FILES];
static int file_count;

static int flush_file(struct out_file *f)
{
    int err = cap_write_all(f->fd, f->buf, f->len);
    f->len = 0;
    return err;
}

static int append(const char *dir, const unsigned char *p, size_t len)
{
    if (len < 12)
        return 0;
    uint32_t ssrc = cap_load_be32(p + 8);
    struct out_file *f = NULL;
    for (int i = 0; i < file_count && !f; i++)
        if (files[i].ssrc == ssrc)
            f = &files[i];
    if (!f) {
        if (file_count == MAX_FILES)
            return 0;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%08x.raw", dir, ssrc);
        f = &files[file_count];
        f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        f->buf = malloc(FILE_BUF);
        if (f->fd < 0 || !f->buf) {
            fprintf(stderr, "recv_floor: %s: %s\n", path, strerror(errno));
            return -1;
        }
        f->ssrc = ssrc;
        f->len = 0;
        file_count++;
    }
    if (f->len + 2 + len > FILE_BUF && flush_file(f) != 0)
        return -1;
    f->buf[f->len] = (unsigned char)(len >> 8);
    f->buf[f->len + 1] = (unsigned char)len;
    memcpy(f->buf + f->len + 2, p, len);
    f->len += 2 + len;
    return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int usage(void)
{
    fprintf(stderr, "usage: recv_floor --port N [--host 127.0.0.1] [--wait-ms 200] [--write DIR]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *dir = NULL;
    long port = 0, wait_ms = 200;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--port") == 0)
            port = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--host") == 0)
            host = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--write") == 0)
            dir = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--wait-ms") == 0)
            wait_ms = strtol(argv[++i], NULL, 10);
        else
            return usage();
    }
    if (port <= 0 || port > 65535 || wait_ms < 0 || wait_ms > 1000)
        return usage();
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "recv_floor: %s is not an IPv4 address\n", host);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int size = 64 << 20;
    if (fd < 0 || (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0 &&
                   setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0) ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        fprintf(stderr, "recv_floor: %s:%ld: %s\n", host, port, strerror(errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    printf("listening on %s:%ld\n", host, port);
    fflush(stdout);

    static unsigned char bufs[BATCH][PACKET_MAX];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = PACKET_MAX};
        msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
    }
    unsigned long long packets = 0, wakeups = 0;
    double cpu0 = 0;
    while (!stop) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        if (!packets)
            cpu0 = cpu_seconds();
        wakeups++;
        int n;
        while ((n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) {
            packets += (unsigned)n;
            for (int i = 0; dir && i < n; i++)
                if (append(dir, bufs[i], msgs[i].msg_len) != 0)
                    return 1;
            if (n < BATCH)
                break;
        }
        if (wait_ms) {
            struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    for (int i = 0; i < file_count; i++) {
        if (flush_file(&files[i]) != 0)
            return 1;
        close(files[i].fd);
        free(files[i].buf);
    }
    double cpu = packets ? cpu_seconds() - cpu0 : 0;
    printf("{\"packets\":%llu,\"cpu_s\":%.6f,\"wakeups\":%llu,\"us_per_packet\":%.4f}\n", packets,
           cpu, wakeups, packets ? cpu * 1e6 / (double)packets : 0.0);
    close(fd);
    return 0;
}
