/* CRC32C (polynomial 0x82F63B78 reflected). The table path is portable; on x86-64 the
 * crc32 instruction is used when cpuid says SSE4.2 is there. */
#include "util/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            table[k][n] = (table[k - 1][n] >> 8) ^ table[0][table[k - 1][n] & 0xff];
}

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t len)
{
    pthread_once(&table_once, build_table);
    while (len && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc; /* little-endian hosts: the low 4 bytes carry the CRC */
        crc = table[7][word & 0xff] ^ table[6][(word >> 8) & 0xff] ^
              table[5][(word >> 16) & 0xff] ^ table[4][(word >> 24) & 0xff] ^
              table[3][(word >> 32) & 0xff] ^ table[2][(word >> 40) & 0xff] ^
              table[1][(word >> 48) & 0xff] ^ table[0][word >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

uint32_t cap_crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    return ~crc32c_table(~crc, data, len);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The crc32 instruction takes 3 cycles and can start one per cycle: one chain over the data
 * runs at a third of its speed. Long inputs go as blocks of three lanes of LANE bytes, each
 * its own chain; the lanes' CRCs are joined by moving the first two past the bytes after
 * them (the CRC register is linear: crc(s, D) = crc(s, zeros of |D|) ^ crc(0, D)), with
 * tables of what LANE and 2 * LANE zero bytes do to each byte of a register. */
#define LANE 128

static uint32_t shift_tables[2][4][256]; /* [0]: past LANE zero bytes, [1]: past 2 * LANE */
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void build_shift_tables(void)
{
    pthread_once(&table_once, build_table);
    static const uint8_t zeros[2 * LANE];
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 4; k++)
            for (uint32_t b = 0; b < 256; b++)
                shift_tables[s][k][b] = crc32c_table(b << (8 * k), zeros, (size_t)(s + 1) * LANE);
}

static inline uint32_t shift(uint32_t crc, int s)
{
    return shift_tables[s][0][crc & 0xff] ^ shift_tables[s][1][(crc >> 8) & 0xff] ^
           shift_tables[s][2][(crc >> 16) & 0xff] ^ shift_tables[s][3][crc >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                               size_t len)
{
    uint64_t c = crc;
    if (len >= 3 * LANE) {
        pthread_once(&shift_once, build_shift_tables);
        do {
            uint64_t a = c, b = 0, d = 0;
            for (size_t i = 0; i < LANE; i += 8) {
                uint64_t wa, wb, wd;
                memcpy(&wa, p + i, 8);
                memcpy(&wb, p + LANE + i, 8);
                memcpy(&wd, p + 2 * LANE + i, 8);
                a = __builtin_ia32_crc32di(a, wa);
                b = __builtin_ia32_crc32di(b, wb);
                d = __builtin_ia32_crc32di(d, wd);
            }
            c = shift((uint32_t)a, 1) ^ shift((uint32_t)b, 0) ^ (uint32_t)d;
            p += 3 * LANE;
            len -= 3 * LANE;
        } while (len >= 3 * LANE);
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}

uint32_t cap_crc32c(uint32_t crc, const void *data, size_t len)
{
    crc = ~crc;
    crc = __builtin_cpu_supports("sse4.2") ? crc32c_hw(crc, data, len)
                                           : crc32c_table(crc, data, len);
    return ~crc;
}
#else
uint32_t cap_crc32c(uint32_t crc, const void *data, size_t len)
{
    return cap_crc32c_portable(crc, data, len);
}
#endif
