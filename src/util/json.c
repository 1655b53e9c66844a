/* JSON helpers (json.h). */
#include "util/json.h"

#include "capstan/error.h"
#include "util/fs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cap_json_write_file(const char *dir, const char *name, json_t *value)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
        json_decref(value);
        return CAP_ELIMIT;
    }
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(value);
    if (!text)
        return CAP_ENOMEM;
    size_t len = strlen(text);
    text[len] = '\n'; /* over the terminator: the file ends with a newline */
    int err = cap_write_file_atomic(path, text, len + 1);
    free(text);
    return err;
}
