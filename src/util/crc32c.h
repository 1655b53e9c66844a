/* CRC32C (Castagnoli), the checksum of every chunk record: SSE4.2 instruction when the CPU
 * has it, a slicing-by-8 table otherwise. */
#ifndef CAP_UTIL_CRC32C_H
#define CAP_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0. */
uint32_t cap_crc32c(uint32_t crc, const void *data, size_t len);
/* The table path alone, so tests can hold both paths to the same answers. */
uint32_t cap_crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif
