/* exit_after_output: a WASI command that prints a complete JSON document on stdout, then
 * reports trouble on stderr and exits with status 3 (as linters and test runners do when
 * they found problems):
 *
 *   stdout  {"checked":3,"problems":1}
 *   stderr  exit_after_output: 1 problem found
 *   exit    3
 *
 * Corpus role: issue 17, "a non-zero exit status counts as success". Today `skills run`
 * exits 0 with that output; a non-zero status should be an execution failure (exit 8,
 * exit_code 3 and the stderr tail in the error) unless the tool declares 3 a success.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  puts("{\"checked\":3,\"problems\":1}");
  fflush(stdout);
  fputs("exit_after_output: 1 problem found\n", stderr);
  exit(3);
}
