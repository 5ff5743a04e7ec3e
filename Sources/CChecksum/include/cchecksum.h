#ifndef VFIOTRACE_CCHECKSUM_H
#define VFIOTRACE_CCHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/// Nonzero when this CPU computes CRC-32C in hardware (x86 SSE4.2 `crc32`,
/// or the Armv8 CRC extension), so `vt_crc32c_hw` may be called.
int vt_crc32c_hw_available(void);

/// CRC-32C (Castagnoli) of `len` bytes at `p`, continuing from `crc` (the
/// inverted running value, as the Swift caller keeps it: start with
/// 0xffffffff, invert at the end). Only when vt_crc32c_hw_available().
uint32_t vt_crc32c_hw(uint32_t crc, const void *p, size_t len);

#endif
