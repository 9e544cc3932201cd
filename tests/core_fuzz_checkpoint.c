/* core_fuzz_checkpoint.c — the checkpoint loader on arbitrary images
 * (tests/fuzz/fuzz_checkpoint.c) over tests/fuzz/corpus_checkpoint, in every `make test`
 * (tests/fuzz/driver.h). Its corpus is made by tests/fuzz/make-checkpoint-corpus.
 */
#include "tests/fuzz/fuzz_checkpoint.c"

#define FUZZ_CORPUS "corpus_checkpoint"
#include "tests/fuzz/driver.h"
