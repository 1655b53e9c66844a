/* Small filesystem helpers: making folders, durable whole-file writes, full writes. */
#ifndef CAP_UTIL_FS_H
#define CAP_UTIL_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates a folder and its parents; 0 or negative errno. */
int cap_mkdir_p(const char *path);
/* Writes all of data at the fd's position, retrying short writes and EINTR. */
int cap_write_all(int fd, const void *data, size_t len);
/* pread until len bytes or end of file; returns bytes read or negative errno. */
ssize_t cap_pread_full(int fd, void *data, size_t len, off_t offset);
/* Replaces path with data atomically (temp file, fsync, rename, fsync of the folder). */
int cap_write_file_atomic(const char *path, const void *data, size_t len);
/* fsyncs the folder holding path, so a new or renamed entry survives a crash. */
int cap_fsync_parent(const char *path);
/* Reads a whole file (up to max bytes) into a NUL-terminated heap buffer. */
int cap_read_file(const char *path, size_t max, char **out, size_t *len);
/* Removes a file or a folder and everything in it (symlinks are not followed); a path that
 * does not exist is fine. 0 or a negative errno. */
int cap_remove_tree(const char *path);

#endif
