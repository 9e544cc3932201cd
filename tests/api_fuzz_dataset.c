/* api_fuzz_dataset.c — the dataset parsers checked against each other
 * (tests/fuzz/fuzz_dataset.c) over tests/fuzz/corpus_dataset, in every `make test`
 * (tests/fuzz/driver.h).
 */
#include "tests/fuzz/fuzz_dataset.c"

#define FUZZ_CORPUS "corpus_dataset"
#include "tests/fuzz/driver.h"
