/* The text behind every CAP_E* code, from the one table in capstan/error.h. */
#include "capstan/error.h"

#include <string.h>

const char *cap_strerror(int err)
{
    switch (err) {
    case CAP_OK:
        return "success";
#define CAP_X_CASE_(name, text)                                                \
    case CAP_E##name:                                                          \
        return text;
        CAP_ERRNO_MAP(CAP_X_CASE_)
#undef CAP_X_CASE_
    default:
        break;
    }
    if (cap_is_errno(err))
        return strerror(-err);
    return "unknown error";
}
