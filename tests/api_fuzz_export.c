/* api_fuzz_export.c — the ONNX and TensorFlow.js writers on networks made from arbitrary bytes
 * (tests/fuzz/fuzz_export.c) over tests/fuzz/corpus_export, in every `make test`
 * (tests/fuzz/driver.h).
 */
#include "tests/fuzz/fuzz_export.c"

#define FUZZ_CORPUS "corpus_export"
#include "tests/fuzz/driver.h"
