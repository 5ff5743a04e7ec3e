/* libzstd's public API is plain C; the module map links -lzstd. */
#include <zstd.h>
#include <zstd_errors.h>
