#ifndef CFUZZ_H
#define CFUZZ_H
/* libFuzzer's driver, for an executable whose main is its own: SwiftPM
 * links an executable's entry point as main, so libFuzzer's main is not
 * used and the harness starts the driver itself. */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
