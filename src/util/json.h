/* JSON helpers shared by the layers that write the recording's files. */
#ifndef CAP_UTIL_JSON_H
#define CAP_UTIL_JSON_H

#include <jansson.h>

/* Writes value, indented, to dir/name atomically (temp file, fsync, rename). Takes the
 * reference to value. */
int cap_json_write_file(const char *dir, const char *name, json_t *value);

#endif
