/* sqlite_demo: the SQLite amalgamation (sqlite3.c, about 9.6 MB of C) as a WASI command,
 * the large real module of the benchmarks (about 1.2 MB of wasm; issue 17's "1.3 MB SQLite
 * module"). It opens an in-memory database, fills a table with the numbers 1..1000 through a
 * recursive CTE and prints their count and sum:
 *
 *   stdout  {"count":1000,"sum":500500}
 *
 * Built by benchmarks/corpus_sqlite.py (scripts/build-sqlite-wasm), not by the test suite:
 * compiling the amalgamation takes about 25 s. Its stdin is not read.
 */
#include <stdio.h>

#include "sqlite3.h"

static int print_row(void *unused, int columns, char **values, char **names) {
  (void)unused;
  (void)names;
  printf("{\"count\":%s,\"sum\":%s}\n", columns > 0 && values[0] ? values[0] : "null",
         columns > 1 && values[1] ? values[1] : "null");
  return 0;
}

int main(void) {
  sqlite3 *db;
  char *error = NULL;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
    fprintf(stderr, "sqlite_demo: cannot open an in-memory database: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  const char *sql =
      "CREATE TABLE t(x INTEGER);"
      "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000)"
      "  INSERT INTO t SELECT i FROM c;"
      "SELECT count(*), sum(x) FROM t;";
  if (sqlite3_exec(db, sql, print_row, NULL, &error) != SQLITE_OK) {
    fprintf(stderr, "sqlite_demo: %s\n", error ? error : "unknown error");
    sqlite3_free(error);
    sqlite3_close(db);
    return 1;
  }
  sqlite3_close(db);
  return 0;
}
