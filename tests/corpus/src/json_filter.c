/* json_filter: a WASI command that reads one JSON document on stdin and writes it back on
 * stdout in compact form, wrapped with statistics about it (what `jq -c` does, plus counts):
 *
 *   stdin   {"b": [1, 2.5e3, "x"], "a": {"n": null}}
 *   stdout  {"value":{"b":[1,2.5e3,"x"],"a":{"n":null}},
 *            "stats":{"objects":2,"arrays":1,"strings":1,"numbers":2,"literals":1,"max_depth":2}}
 *
 * Corpus role: the ordinary case of a real C program (wasi-libc stdio, malloc/realloc,
 * recursion) run as a `wasi-command` tool; it must succeed with exactly that output.
 * Input that is not JSON ends with a message on stderr and exit status 2, as a filter does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct buf { char *data; size_t len, cap; };

static const char *start, *at, *end;   /* the input, and the parser's position in it */
static struct buf out;
static long objects, arrays, strings, numbers, literals;
static int max_depth;

static void fail(const char *what) {
  fprintf(stderr, "json_filter: invalid JSON at byte %ld: %s\n", (long)(at - start), what);
  exit(2);
}

static void put(const char *s, size_t n) {
  if (out.len + n > out.cap) {
    size_t cap = out.cap ? out.cap : 256;
    while (cap < out.len + n) cap *= 2;
    char *grown = realloc(out.data, cap);
    if (!grown) { fprintf(stderr, "json_filter: out of memory\n"); exit(1); }
    out.data = grown;
    out.cap = cap;
  }
  memcpy(out.data + out.len, s, n);
  out.len += n;
}

static void puts_(const char *s) { put(s, strlen(s)); }

static void skip_ws(void) {
  while (at < end && (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r')) at++;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static void value(int depth);

static void string(void) {           /* copies a string token through, escapes included */
  const char *s = at++;
  while (at < end && *at != '"') {
    if ((unsigned char)*at < 0x20) fail("control character in a string");
    if (*at == '\\') {
      at++;
      if (at >= end) break;
      if (*at == 'u') {
        for (int i = 1; i <= 4; i++)
          if (at + i >= end || !strchr("0123456789abcdefABCDEF", at[i]) || !at[i]) fail("bad \\u escape");
        at += 4;
      } else if (!strchr("\"\\/bfnrt", *at) || !*at) {
        fail("bad escape");
      }
    }
    at++;
  }
  if (at >= end) fail("unterminated string");
  at++;
  put(s, (size_t)(at - s));
}

static void number(void) {
  const char *s = at;
  if (*at == '-') at++;
  if (at < end && *at == '0') at++;
  else if (at < end && is_digit(*at)) while (at < end && is_digit(*at)) at++;
  else fail("bad number");
  if (at < end && *at == '.') {
    at++;
    if (at >= end || !is_digit(*at)) fail("bad fraction");
    while (at < end && is_digit(*at)) at++;
  }
  if (at < end && (*at == 'e' || *at == 'E')) {
    at++;
    if (at < end && (*at == '+' || *at == '-')) at++;
    if (at >= end || !is_digit(*at)) fail("bad exponent");
    while (at < end && is_digit(*at)) at++;
  }
  numbers++;
  put(s, (size_t)(at - s));
}

static void literal(const char *word) {
  size_t n = strlen(word);
  if ((size_t)(end - at) < n || memcmp(at, word, n) != 0) fail("unexpected character");
  at += n;
  literals++;
  put(word, n);
}

static void container(int depth, char close) {
  int first = 1;
  if (depth > max_depth) max_depth = depth;
  put(at++, 1);
  skip_ws();
  while (at < end && *at != close) {
    if (!first) {
      if (*at != ',') fail("expected ','");
      put(at++, 1);
      skip_ws();
    }
    first = 0;
    if (close == '}') {
      if (at >= end || *at != '"') fail("expected a key");
      string();
      skip_ws();
      if (at >= end || *at != ':') fail("expected ':'");
      put(at++, 1);
    }
    value(depth);
    skip_ws();
  }
  if (at >= end) fail("unterminated container");
  put(at++, 1);
}

static void value(int depth) {
  skip_ws();
  if (at >= end) fail("unexpected end");
  if (depth >= MAX_DEPTH) fail("nested too deeply");
  switch (*at) {
    case '{': objects++; container(depth + 1, '}'); break;
    case '[': arrays++; container(depth + 1, ']'); break;
    case '"': strings++; string(); break;
    case 't': literal("true"); break;
    case 'f': literal("false"); break;
    case 'n': literal("null"); break;
    default: number();
  }
}

static char *read_all(FILE *f, size_t *len) {
  size_t cap = 4096, n = 0, got;
  char *data = malloc(cap);
  while (data && (got = fread(data + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) data = realloc(data, cap *= 2);
  }
  if (!data || ferror(f)) { fprintf(stderr, "json_filter: cannot read stdin\n"); exit(1); }
  *len = n;
  return data;
}

int main(void) {
  size_t len;
  char *text = read_all(stdin, &len);
  start = at = text;
  end = text + len;
  puts_("{\"value\":");
  value(0);
  skip_ws();
  if (at != end) fail("trailing characters");
  char stats[256];
  snprintf(stats, sizeof stats,
           ",\"stats\":{\"objects\":%ld,\"arrays\":%ld,\"strings\":%ld,\"numbers\":%ld,"
           "\"literals\":%ld,\"max_depth\":%d}}\n",
           objects, arrays, strings, numbers, literals, max_depth);
  puts_(stats);
  fwrite(out.data, 1, out.len, stdout);
  free(out.data);
  free(text);
  return 0;
}
