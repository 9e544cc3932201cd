/* store_debug.h — test-only hooks of the SQLite store (tests/store_*.c, bench/bench_store.c).
 * Never used by the server itself.
 */
#ifndef BACKPROPD_STORE_DEBUG_H
#define BACKPROPD_STORE_DEBUG_H

#include "server/store/store.h"

/* Caps the database file at `pages` pages on every connection of s (PRAGMA max_page_count;
 * 0 = no cap) so a test can make writes fail with SQLITE_FULL like a full disk would. */
void store_debug_max_pages(store *s, int pages);
/* Current size of the database file in pages and the page size (bytes). 0 or negative code. */
int store_debug_page_count(store *s, int64_t *pages, int64_t *page_size, store_error *err);

#endif
