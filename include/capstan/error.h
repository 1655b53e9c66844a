/* capstan error codes: one table, negative values, cap_strerror() for text.
 * Every libcapstan call returns 0 (or a count) on success and a negative CAP_E* on failure. */
#ifndef CAPSTAN_ERROR_H
#define CAPSTAN_ERROR_H

#define CAP_ERRNO_MAP(X)                                                       \
    X(INVAL, "invalid argument")                                               \
    X(NOMEM, "out of memory")                                                  \
    X(IO, "input/output error")                                                \
    X(NOENT, "no such file or object")                                         \
    X(EXIST, "already exists")                                                 \
    X(TRUNC, "truncated input")                                                \
    X(VERSION, "unsupported version")                                          \
    X(FORMAT, "malformed input")                                               \
    X(CHECKSUM, "checksum mismatch")                                           \
    X(RANGE, "value out of range")                                             \
    X(LIMIT, "size limit exceeded")                                            \
    X(AGAIN, "try again")                                                      \
    X(UNSUPPORTED, "not supported")                                            \
    X(DUPLICATE, "duplicate")                                                  \
    X(LATE, "arrived too late")                                                \
    X(STATE, "operation not allowed in this state")

enum cap_error {
    CAP_OK = 0,
    CAP_EFIRST_ = -10000,
#define CAP_X_ENUM_(name, text) CAP_E##name,
    CAP_ERRNO_MAP(CAP_X_ENUM_)
#undef CAP_X_ENUM_
    CAP_ELAST_
};

/* True for a negative errno passed through (I/O failures), as opposed to a CAP_E* code. */
static inline int cap_is_errno(int err) { return err < 0 && err > -4096; }

/* Text for a CAP_E* code (or for a negative errno); never NULL. */
const char *cap_strerror(int err);

#endif
