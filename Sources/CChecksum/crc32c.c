// CRC-32C with the CPU's own instruction. The table-driven Swift code
// (Sources/Trace/Binary/CRC32C.swift) is the reference and the fallback; this
// is the same function at several bytes per cycle, for the trace's frame
// checksums on the write and read paths.
#include "cchecksum.h"
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

int vt_crc32c_hw_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t vt_crc32c_hw(uint32_t crc, const void *p, size_t len) {
    const unsigned char *b = p;
    uint64_t c = crc;
    // Eight bytes per instruction; loads through memcpy are unaligned-safe.
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        c = _mm_crc32_u64(c, w);
        b += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len > 0) {
        c32 = _mm_crc32_u8(c32, *b++);
        len--;
    }
    return c32;
}

#elif defined(__aarch64__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#include <arm_acle.h>

int vt_crc32c_hw_available(void) {
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
}

__attribute__((target("+crc")))
uint32_t vt_crc32c_hw(uint32_t crc, const void *p, size_t len) {
    const unsigned char *b = p;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        crc = __crc32cd(crc, w);
        b += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = __crc32cb(crc, *b++);
        len--;
    }
    return crc;
}

#else
int vt_crc32c_hw_available(void) { return 0; }
uint32_t vt_crc32c_hw(uint32_t crc, const void *p, size_t len) { (void)p; (void)len; return crc; }
#endif
