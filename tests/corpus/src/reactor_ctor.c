/* reactor_ctor: a WASI reactor (built with -mexec-model=reactor, so it exports _initialize
 * instead of _start) that implements the runner's json-v1 ABI: `alloc(len) -> ptr` and
 * `run(ptr, len) -> (out_ptr << 32) | out_len`, with JSON in and JSON out in linear memory.
 *
 * A static constructor fills a lookup table. wasi-libc runs constructors from _initialize
 * (crt1-reactor.o calls __wasm_call_ctors), so a host that follows the reactor convention
 * calls _initialize once before any other export. `run` reports what it sees:
 *
 *   {"init":true,"table_sum":4950,"input_bytes":N}    _initialize ran first
 *   {"init":false,"table_sum":0,"input_bytes":N}      it did not: the constructor never ran
 *
 * Corpus role: the reactor convention (issue 17: "json-v1 never calls _initialize"). It
 * avoids stdio (snprintf alone pulls in fd_write, fd_seek and fd_close), so it imports
 * nothing at all and the json-v1 import rules accept it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int initialised;
static int *table;

__attribute__((constructor)) static void build_table(void) {
  table = malloc(100 * sizeof *table);
  if (!table) return;
  for (int i = 0; i < 100; i++) table[i] = i;
  initialised = 1;
}

__attribute__((export_name("alloc"))) void *alloc(uint32_t len) { return malloc(len ? len : 1); }

static char *append(char *at, const char *s) {
  size_t n = strlen(s);
  memcpy(at, s, n);
  return at + n;
}

static char *append_number(char *at, unsigned long v) {
  char digits[24];
  int n = 0;
  do digits[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n) *at++ = digits[--n];
  return at;
}

__attribute__((export_name("run"))) uint64_t run(const char *input, uint32_t len) {
  static char out[128];
  unsigned long sum = 0;
  (void)input;
  if (initialised)
    for (int i = 0; i < 100; i++) sum += (unsigned long)table[i];
  char *at = append(out, initialised ? "{\"init\":true" : "{\"init\":false");
  at = append_number(append(at, ",\"table_sum\":"), sum);
  at = append(append_number(append(at, ",\"input_bytes\":"), len), "}");
  return ((uint64_t)(uintptr_t)out << 32) | (uint32_t)(at - out);
}
