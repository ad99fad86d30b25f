/* fail_stderr: a WASI command that fails the way command-line programs do: it cannot open
 * its configuration file (the sandbox preopens no directory), says so on stderr and exits
 * with status 1, writing nothing on stdout:
 *
 *   stderr  fail_stderr: can not read 'config.toml': <strerror text>
 *   exit    1
 *
 * Corpus role: issue 17, "a failing WASI command loses its stderr and exit status". Today
 * `skills run` reports invalid_output "the module produced no stdout" with an empty log;
 * the run should fail as an execution failure (exit 8) carrying exit_code 1 and the stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  FILE *config = fopen("config.toml", "r");
  if (!config) {
    fprintf(stderr, "fail_stderr: can not read 'config.toml': %s\n", strerror(errno));
    return 1;
  }
  fclose(config);
  puts("{\"config\":true}");
  return 0;
}
