/* Declarations only (CFuzz.h); libFuzzer provides the code. */
