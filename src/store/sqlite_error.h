/* One mapping from SQLite result codes to CAP_E* codes, for every SQLite user (catalog,
 * job queue, webhook outbox). */
#ifndef CAP_STORE_SQLITE_ERROR_H
#define CAP_STORE_SQLITE_ERROR_H

#include "capstan/error.h"

#include <sqlite3.h>

static inline int cap_sqlite_error(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return CAP_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return CAP_EAGAIN;
    case SQLITE_CONSTRAINT:
        return CAP_EEXIST;
    case SQLITE_TOOBIG:
        return CAP_ELIMIT;
    default:
        return CAP_EIO;
    }
}

#endif
