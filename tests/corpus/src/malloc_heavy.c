/* malloc_heavy: a WASI command that exercises wasi-libc's allocator (dlmalloc growing the
 * linear memory with memory.grow). It reads a count N (a JSON number) on stdin, then
 *   1. builds a chained hash table of N heap-allocated string keys, doubling the bucket
 *      array with realloc as it fills, and looks every key up again;
 *   2. allocates N blocks of pseudo-random sizes (1..4096 bytes), frees every other one,
 *      grows the rest with realloc, and checksums their contents;
 *   3. frees everything.
 * It prints {"n":N,"allocations":A,"frees":F,"found":N,"checksum":C} on stdout.
 *
 * Corpus role: many allocations and memory growth inside a real program (memory quota and
 * fuel at realistic levels); with N = 2000 it needs a few MiB of memory and some tens of
 * millions of instructions, more than the manifest default fuel of 10,000,000.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; char *key; };

static long allocations, frees;
static uint32_t rng = 12345;

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) { fprintf(stderr, "malloc_heavy: out of memory after %ld allocations\n", allocations); exit(1); }
  allocations++;
  return p;
}

static void *xrealloc(void *old, size_t n) {
  void *p = realloc(old, n);
  if (!p) { fprintf(stderr, "malloc_heavy: out of memory after %ld allocations\n", allocations); exit(1); }
  allocations++;
  frees++;
  return p;
}

static void xfree(void *p) { free(p); frees++; }

static uint32_t next_random(void) { rng = rng * 1103515245u + 12345u; return rng >> 8; }

static uint32_t hash(const char *s) {
  uint32_t h = 2166136261u;
  while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

static long hash_table(long n) {
  size_t buckets = 8, used = 0;
  struct node **table = calloc(buckets, sizeof *table);
  if (!table) exit(1);
  allocations++;
  for (long i = 0; i < n; i++) {
    if (used * 4 >= buckets * 3) {   /* rehash into a table twice the size */
      size_t grown = buckets * 2;
      struct node **next = calloc(grown, sizeof *next);
      if (!next) exit(1);
      allocations++;
      for (size_t b = 0; b < buckets; b++)
        for (struct node *e = table[b], *after; e; e = after) {
          after = e->next;
          e->next = next[hash(e->key) % grown];
          next[hash(e->key) % grown] = e;
        }
      xfree(table);
      table = next;
      buckets = grown;
    }
    char key[32];
    snprintf(key, sizeof key, "key-%ld", i);
    struct node *e = xmalloc(sizeof *e);
    e->key = xmalloc(strlen(key) + 1);
    strcpy(e->key, key);
    e->next = table[hash(key) % buckets];
    table[hash(key) % buckets] = e;
    used++;
  }
  long found = 0;
  for (long i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "key-%ld", i);
    for (struct node *e = table[hash(key) % buckets]; e; e = e->next)
      if (strcmp(e->key, key) == 0) { found++; break; }
  }
  for (size_t b = 0; b < buckets; b++)
    for (struct node *e = table[b], *after; e; e = after) {
      after = e->next;
      xfree(e->key);
      xfree(e);
    }
  xfree(table);
  return found;
}

static uint32_t blocks(long n) {
  unsigned char **block = xmalloc((size_t)n * sizeof *block);
  size_t *size = xmalloc((size_t)n * sizeof *size);
  uint32_t checksum = 0;
  for (long i = 0; i < n; i++) {
    size[i] = 1 + next_random() % 4096;
    block[i] = xmalloc(size[i]);
    memset(block[i], (int)(i & 0xff), size[i]);
  }
  for (long i = 0; i < n; i += 2) { xfree(block[i]); block[i] = NULL; }
  for (long i = 1; i < n; i += 2) {
    block[i] = xrealloc(block[i], size[i] * 2);
    memset(block[i] + size[i], 0x5a, size[i]);
    for (size_t j = 0; j < size[i] * 2; j += 64) checksum = checksum * 31u + block[i][j];
    xfree(block[i]);
  }
  xfree(block);
  xfree(size);
  return checksum;
}

int main(void) {
  long n;
  if (scanf("%ld", &n) != 1 || n < 1 || n > 1000000) {
    fprintf(stderr, "malloc_heavy: expected a count from 1 to 1000000 on stdin\n");
    return 2;
  }
  long found = hash_table(n);
  uint32_t checksum = blocks(n);
  printf("{\"n\":%ld,\"allocations\":%ld,\"frees\":%ld,\"found\":%ld,\"checksum\":%lu}\n",
         n, allocations, frees, found, (unsigned long)checksum);
  return 0;
}
