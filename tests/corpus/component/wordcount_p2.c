/* wordcount_p2: the core of a WASI preview 2 command component. It counts the words and
 * bytes of its stdin and prints {"words":W,"bytes":B} on stdout, calling the WASI preview 1
 * functions directly (no stdio), so the component stays small.
 *
 * Corpus role: issue 17, "WebAssembly components (WASI preview 2)". wordcount_p2.component.wasm
 * is this program made into a component with the WASI preview 1 adapter (the
 * wasi:cli/command world), committed because building it needs npm packages the tests do not
 * install. wasmtime-py 50 instantiates and runs it (docs/real-world-modules.md); the runner
 * refuses components today. Build:
 *
 *   clang --target=wasm32-wasi -O2 -Wall -Wextra -Wl,--strip-debug -mexec-model=command \
 *       wordcount_p2.c -o wordcount_p2.core.wasm
 *   npm install @bytecodealliance/jco-transpile@0.15.0     # wasm-tools' component new
 *   npm pack @bytecodealliance/jco@1.35.0                   # ships lib/wasi_snapshot_preview1.command.wasm
 *   node componentize.mjs wordcount_p2.core.wasm wasi_snapshot_preview1.command.wasm \
 *       wordcount_p2.component.wasm
 */
#include <stdint.h>
#include <wasi/api.h>

static char *format(char *at, const char *text) {
  while (*text) *at++ = *text++;
  return at;
}

static char *number(char *at, uint64_t v) {
  char digits[24];
  int n = 0;
  do digits[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n) *at++ = digits[--n];
  return at;
}

int main(void) {
  static uint8_t buf[4096];
  uint64_t words = 0, bytes = 0;
  int in_word = 0;
  for (;;) {
    __wasi_iovec_t iov = {buf, sizeof buf};
    __wasi_size_t got;
    if (__wasi_fd_read(0, &iov, 1, &got) != 0) return 1;
    if (got == 0) break;
    bytes += got;
    for (__wasi_size_t i = 0; i < got; i++) {
      int space = buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r';
      if (space) in_word = 0;
      else if (!in_word) { in_word = 1; words++; }
    }
  }
  static char out[64];
  char *at = number(format(out, "{\"words\":"), words);
  at = format(number(format(at, ",\"bytes\":"), bytes), "}\n");
  __wasi_ciovec_t line = {(const uint8_t *)out, (__wasi_size_t)(at - out)};
  __wasi_size_t written;
  return __wasi_fd_write(1, &line, 1, &written) == 0 ? 0 : 1;
}
