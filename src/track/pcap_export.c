/* export-pcap: every track of a recording back into one capture, merged by arrival time,
 * with the addresses and ports the import recorded in endpoint events. The dumper is
 * libpcap's; frames are Ethernet + IPv4/IPv6 + UDP as a Linux loopback capture has them. */
#include "track/pcap.h"

#include "track/netframe.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void cap_track_dirs_free(char **dirs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(dirs[i]);
    free(dirs);
}

int cap_track_dirs_list(const char *rec_dir, char ***dirs_out, size_t *count_out)
{
    char tracks[PATH_MAX];
    if (snprintf(tracks, sizeof(tracks), "%s/tracks", rec_dir) >= (int)sizeof(tracks))
        return CAP_ELIMIT;
    DIR *d = opendir(tracks);
    if (!d)
        return errno == ENOENT ? CAP_ENOENT : -errno;
    char **dirs = NULL;
    size_t count = 0, cap = 0;
    int err = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", tracks, e->d_name) >= (int)sizeof(path))
            continue;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(dirs, cap * sizeof(*grown));
            if (!grown) {
                err = CAP_ENOMEM;
                break;
            }
            dirs = grown;
        }
        if (!(dirs[count] = strdup(path))) {
            err = CAP_ENOMEM;
            break;
        }
        count++;
    }
    closedir(d);
    if (err) {
        cap_track_dirs_free(dirs, count);
        return err;
    }
    qsort(dirs, count, sizeof(*dirs), compare_names);
    *dirs_out = dirs;
    *count_out = count;
    return 0;
}

struct export_track {
    struct cap_track_reader *reader;
    struct cap_record rec;
    bool has_rec;
    struct cap_udp_endpoints rtp_ep;
    struct cap_udp_endpoints rtcp_ep;
};

static int parse_addr(const char *text, int *family, uint8_t *out)
{
    if (inet_pton(AF_INET, text, out) == 1) {
        *family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out) == 1) {
        *family = 6;
        return 0;
    }
    return CAP_EFORMAT;
}

/* Applies an endpoint event; other events and malformed ones are ignored. */
static void apply_event(struct export_track *t, const struct cap_record *rec)
{
    json_t *ev = json_loadb((const char *)rec->data, rec->len, 0, NULL);
    if (!ev)
        return;
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *dir = json_string_value(json_object_get(ev, "for"));
    const char *src = json_string_value(json_object_get(ev, "src"));
    const char *dst = json_string_value(json_object_get(ev, "dst"));
    json_int_t sport = json_integer_value(json_object_get(ev, "src_port"));
    json_int_t dport = json_integer_value(json_object_get(ev, "dst_port"));
    if (type && dir && src && dst && strcmp(type, "endpoint") == 0 && sport > 0 && sport < 65536 &&
        dport > 0 && dport < 65536) {
        struct cap_udp_endpoints ep;
        memset(&ep, 0, sizeof(ep));
        int fs, fd;
        if (parse_addr(src, &fs, ep.src) == 0 && parse_addr(dst, &fd, ep.dst) == 0 && fs == fd) {
            ep.family = fs;
            ep.src_port = (uint16_t)sport;
            ep.dst_port = (uint16_t)dport;
            *(strcmp(dir, "rtcp") == 0 ? &t->rtcp_ep : &t->rtp_ep) = ep;
        }
    }
    json_decref(ev);
}

/* Moves a track to its next RTP or RTCP record, applying events on the way. */
static int advance(struct export_track *t)
{
    for (;;) {
        int got = cap_track_next(t->reader, &t->rec);
        if (got == CAP_ECHECKSUM)
            continue; /* a damaged record is skipped; the rest still exports */
        if (got <= 0) {
            t->has_rec = false;
            return got == CAP_ETRUNC ? 0 : got;
        }
        if (t->rec.type == CAP_RECORD_EVENT) {
            apply_event(t, &t->rec);
            continue;
        }
        t->has_rec = true;
        return 0;
    }
}

static void default_endpoints(struct export_track *t, size_t i)
{
    struct cap_udp_endpoints ep;
    memset(&ep, 0, sizeof(ep));
    ep.family = 4;
    uint8_t loopback[4] = {127, 0, 0, 1};
    memcpy(ep.src, loopback, 4);
    memcpy(ep.dst, loopback, 4);
    ep.src_port = (uint16_t)(40000 + 2 * (i % 10000));
    ep.dst_port = (uint16_t)(5004 + 2 * (i % 10000));
    t->rtp_ep = ep;
    ep.src_port++;
    ep.dst_port++;
    t->rtcp_ep = ep;
}

static void close_tracks(struct export_track *tracks, size_t count)
{
    for (size_t i = 0; i < count; i++)
        cap_track_close(tracks[i].reader);
    free(tracks);
}

static int open_tracks(char **dirs, size_t count, struct export_track **out, char *why,
                       size_t why_size)
{
    struct export_track *tracks = calloc(count ? count : 1, sizeof(*tracks));
    if (!tracks)
        return CAP_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        int err = cap_track_open(&tracks[i].reader, dirs[i]);
        if (err) {
            snprintf(why, why_size, "%s: %s", dirs[i], cap_strerror(err));
            close_tracks(tracks, count);
            return err;
        }
        default_endpoints(&tracks[i], i);
    }
    *out = tracks;
    return 0;
}

/* True when some arrival time is not a whole microsecond: then only a nanosecond pcap
 * keeps it. */
static int needs_nanoseconds(char **dirs, size_t count, bool *nano, char *why, size_t why_size)
{
    struct export_track *tracks;
    int err = open_tracks(dirs, count, &tracks, why, why_size);
    if (err)
        return err;
    *nano = false;
    for (size_t i = 0; i < count && !*nano; i++) {
        while (!*nano && (err = advance(&tracks[i])) == 0 && tracks[i].has_rec)
            if (tracks[i].rec.arrival_ns % 1000 != 0)
                *nano = true;
        if (err)
            break;
    }
    close_tracks(tracks, count);
    return err;
}

int cap_pcap_export(const char *rec_dir, const char *out_path, struct cap_export_report *report,
                    char *why, size_t why_size)
{
    memset(report, 0, sizeof(*report));
    char **dirs;
    size_t count;
    int err = cap_track_dirs_list(rec_dir, &dirs, &count);
    if (err) {
        snprintf(why, why_size, "%s: not a recording folder (no tracks/): %s", rec_dir, cap_strerror(err));
        return err;
    }
    bool nano;
    err = needs_nanoseconds(dirs, count, &nano, why, why_size);
    struct export_track *tracks = NULL;
    if (!err)
        err = open_tracks(dirs, count, &tracks, why, why_size);
    cap_track_dirs_free(dirs, count);
    if (err)
        return err;
    pcap_t *dead = pcap_open_dead_with_tstamp_precision(
        DLT_EN10MB, 65535, nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO);
    pcap_dumper_t *dumper = dead ? pcap_dump_open(dead, out_path) : NULL;
    if (!dumper) {
        snprintf(why, why_size, "%s: cannot write: %s", out_path, dead ? pcap_geterr(dead) : "no memory");
        if (dead)
            pcap_close(dead);
        close_tracks(tracks, count);
        return CAP_EIO;
    }
    for (size_t i = 0; i < count && !err; i++)
        err = advance(&tracks[i]);
    uint8_t *frame = malloc(CAP_NETFRAME_MAX_HEADER + 65536);
    if (!frame)
        err = CAP_ENOMEM;
    while (!err) {
        /* The earliest next record; ties go to the lower track, keeping output stable. */
        struct export_track *next = NULL;
        for (size_t i = 0; i < count; i++)
            if (tracks[i].has_rec && (!next || tracks[i].rec.arrival_ns < next->rec.arrival_ns))
                next = &tracks[i];
        if (!next)
            break;
        const struct cap_udp_endpoints *ep =
            next->rec.type == CAP_RECORD_RTCP ? &next->rtcp_ep : &next->rtp_ep;
        size_t hdr = cap_netframe_encode_ethernet(ep, next->rec.data, next->rec.len, frame);
        if (hdr == 0) {
            report->skipped++;
            err = advance(next);
            continue;
        }
        memcpy(frame + hdr, next->rec.data, next->rec.len);
        struct pcap_pkthdr ph;
        int64_t t = next->rec.arrival_ns;
        ph.ts.tv_sec = t / 1000000000;
        ph.ts.tv_usec = (suseconds_t)(nano ? t % 1000000000 : (t % 1000000000) / 1000);
        ph.caplen = ph.len = (bpf_u_int32)(hdr + next->rec.len);
        pcap_dump((u_char *)dumper, &ph, frame);
        report->packets++;
        err = advance(next);
        if (err)
            snprintf(why, why_size, "reading %s: %s", rec_dir, cap_strerror(err));
    }
    if (pcap_dump_flush(dumper) != 0 && !err) {
        err = CAP_EIO;
        snprintf(why, why_size, "%s: write failed", out_path);
    }
    free(frame);
    pcap_dump_close(dumper);
    pcap_close(dead);
    close_tracks(tracks, count);
    return err;
}
