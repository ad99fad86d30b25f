/* reactor_logging: the same json-v1 reactor shape as reactor_ctor (exports _initialize,
 * alloc and run), but it logs each call with fprintf(stderr, ...), as real C libraries do.
 * Using stdio makes wasi-libc import wasi_snapshot_preview1 functions (fd_write, fd_close,
 * fd_seek, fd_fdstat_get, proc_exit, ...):
 *
 *   run(ptr, len) -> {"echo_bytes":N}      and the line "reactor_logging: run N" on stderr
 *
 * Corpus role: a reactor that needs WASI. json-v1 provides only skills:host/v1, so today
 * the audit fails it on wasm_import_allowlist naming only the namespace, and a run is
 * refused; issue 17 asks that the message name the functions and the ABI that would allow
 * them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((export_name("alloc"))) void *alloc(uint32_t len) { return malloc(len ? len : 1); }

__attribute__((export_name("run"))) uint64_t run(const char *input, uint32_t len) {
  static char out[64];
  (void)input;
  fprintf(stderr, "reactor_logging: run %lu\n", (unsigned long)len);
  int n = snprintf(out, sizeof out, "{\"echo_bytes\":%lu}", (unsigned long)len);
  return ((uint64_t)(uintptr_t)out << 32) | (uint32_t)n;
}
