/* Fuzz target: import-mjr end to end (info header JSON, frame walk, RTP checks, arrival
 * times, track writing) into a scratch folder, then export-pcap of what was imported. */
#include "track/mjr_import.h"
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
    int fd = memfd_create("fuzz-mjr", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char mjr_path[64];
    snprintf(mjr_path, sizeof(mjr_path), "/proc/self/fd/%d", fd);
    char out[128];
    snprintf(out, sizeof(out), "/tmp/capstan-fuzz-mjr-%d", (int)getpid());
    cap_remove_tree(out);

    const char *paths[] = {mjr_path};
    struct cap_mjr_import_options opt = {
        .paths = paths,
        .path_count = 1,
        .out_dir = out,
        .room_id = "fuzz",
        .recording_id = "fuzz",
        .peer_id = "fuzz",
    };
    struct cap_mjr_import_report rep;
    char why[512];
    if (cap_mjr_import(&opt, &rep, why, sizeof(why)) == 0) {
        char exported[160];
        snprintf(exported, sizeof(exported), "%s/export.pcap", out);
        struct cap_export_report exported_report;
        cap_pcap_export(out, exported, &exported_report, why, sizeof(why));
    }
    cap_mjr_import_report_deinit(&rep);
    cap_remove_tree(out);
    close(fd);
    return 0;
}
