/* wordcount: a WASI command that counts the lines, words and bytes of its stdin, like `wc`,
 * and prints them as one JSON object on stdout:
 *
 *   stdin   "the quick brown fox"            (the runner passes the tool input as JSON text)
 *   stdout  {"lines":0,"words":4,"bytes":21}
 *
 * Corpus role: a plain text-processing command (getchar loop, ctype) run as a
 * `wasi-command` tool; it must succeed with exactly that output.
 */
#include <ctype.h>
#include <stdio.h>

int main(void) {
  long lines = 0, words = 0, bytes = 0;
  int c, in_word = 0;
  while ((c = getchar()) != EOF) {
    bytes++;
    if (c == '\n') lines++;
    if (isspace(c)) {
      in_word = 0;
    } else if (!in_word) {
      in_word = 1;
      words++;
    }
  }
  if (ferror(stdin)) {
    perror("wordcount: cannot read stdin");
    return 1;
  }
  printf("{\"lines\":%ld,\"words\":%ld,\"bytes\":%ld}\n", lines, words, bytes);
  return 0;
}
