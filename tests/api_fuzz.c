/* api_fuzz.c — the standalone driver of the contract's fuzz target (tests/fuzz/fuzz_api.c)
 * over tests/fuzz/corpus, in every `make test` (tests/fuzz/driver.h).
 */
#include "tests/fuzz/fuzz_api.c"

#define FUZZ_CORPUS "corpus"
#define FUZZ_MIN_CORPUS 10
#include "tests/fuzz/driver.h"
