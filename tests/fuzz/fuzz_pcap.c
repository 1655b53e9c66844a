/* Fuzz target: pcap/pcapng import end to end (capture parsing, link/IP/UDP decoding,
 * RTP/RTCP demux, track writing) into a scratch folder that is removed afterwards. */
#include "track/pcap.h"
#include "util/fs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-pcap", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char pcap_path[64];
    snprintf(pcap_path, sizeof(pcap_path), "/proc/self/fd/%d", fd);
    char out[128];
    snprintf(out, sizeof(out), "/tmp/capstan-fuzz-pcap-%d", (int)getpid());
    cap_remove_tree(out);

    struct cap_pt_map map;
    cap_pt_map_init(&map);
    char why[256];
    cap_pt_map_add_spec(&map, "96=VP8/90000", why, sizeof(why));
    cap_pt_map_add_spec(&map, "111=opus/48000/2", why, sizeof(why));
    struct cap_import_options opt = {
        .pcap_path = pcap_path, .out_dir = out, .map = &map,
        .room_id = "fuzz", .recording_id = "fuzz",
    };
    struct cap_import_report rep;
    if (cap_pcap_import(&opt, &rep, why, sizeof(why)) == 0) {
        char exported[160];
        snprintf(exported, sizeof(exported), "%s/export.pcap", out);
        struct cap_export_report exported_report;
        cap_pcap_export(out, exported, &exported_report, why, sizeof(why));
    }
    cap_import_report_deinit(&rep);
    cap_pt_map_deinit(&map);
    cap_remove_tree(out);
    close(fd);
    return 0;
}
