/* stderr_flood: a WASI command that writes 100 KiB of diagnostics to stderr (1,600 lines of
 * 64 bytes), checking every write as careful programs do, then prints on stdout how many
 * bytes the writes reported as written and how many of them failed:
 *
 *   stdout  {"stderr_bytes":102400,"failed_writes":0}     every write succeeded
 *
 * Corpus role: issue 17, "the output caps return -EFBIG to the guest". The runner keeps
 * 64 KiB of stderr; past that it makes fd_write fail, so the guest sees failed writes (a
 * Rust program panics inside eprintln!). A cap should discard the excess and say so in the
 * result, as a terminal would, and the guest should see every write succeed.
 */
#include <stdio.h>
#include <string.h>

int main(void) {
  char line[65];
  long written = 0, failed = 0;
  memset(line, 'x', 63);
  line[63] = '\n';
  line[64] = '\0';
  for (int i = 0; i < 1600; i++) {
    /* stderr is unbuffered: each fputs is one fd_write, and its failure shows at once */
    if (fputs(line, stderr) == EOF) failed++;
    else written += 64;
    clearerr(stderr);
  }
  printf("{\"stderr_bytes\":%ld,\"failed_writes\":%ld}\n", written, failed);
  return 0;
}
