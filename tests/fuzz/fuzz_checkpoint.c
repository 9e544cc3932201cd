/* fuzz_checkpoint.c — the checkpoint loader (core/checkpoint.c) on arbitrary images, for
 * trainers of every optimizer's state layout (adam's moments, L-BFGS history, momentum,
 * early stopping's best weights): an image is refused with an error or loaded; a loaded one
 * saves back to the same bytes, and the trainer then runs an epoch (where a counter at its
 * limit would overflow) without a sanitizer report. The first input byte picks the trainer
 * (and, with its top bit clear, has the image's checksum made right first); the rest is the
 * image.
 *
 * Built with clang -fsanitize=fuzzer by `make fuzz` (tests/fuzz/run), and included by
 * tests/core_fuzz_checkpoint.c, whose Criterion driver replays corpus_checkpoint/ and a fixed
 * set of mutations under ASan+UBSan in every `make test`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ck_check(int ok)
{
    if (!ok)
        __builtin_trap();
}

enum { CK_ROWS = 24, CK_IN = 3, CK_OUT = 2, CK_KINDS = 4 };

/* A small trainer of kind k (0 adam mini-batch + early stopping, 1 L-BFGS, 2 momentum, 3 gd)
 * on a fixed dataset; the arrays outlive it (static). new, or NULL. */
static bp_trainer *ck_trainer(int k, bp_error *err)
{
    static double X[CK_ROWS * CK_IN], Y[CK_ROWS * CK_OUT];
    for (int i = 0; i < CK_ROWS; i++) {
        for (int j = 0; j < CK_IN; j++)
            X[i * CK_IN + j] = (double)((i * 7 + j * 3) % 11) / 11.0;
        Y[i * CK_OUT + 0] = i % 2;
        Y[i * CK_OUT + 1] = 1 - i % 2;
    }
    bp_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.n_layers = 3;
    spec.sizes[0] = CK_IN;
    spec.sizes[1] = 4;
    spec.sizes[2] = CK_OUT;
    spec.hidden = BP_ACT_SIGMOID;
    spec.output = BP_OUT_SOFTMAX;
    bp_train_config c;
    bp_train_config_default(&c);
    c.epochs = 50;
    c.seed = 7;
    const bp_optimizer opt[CK_KINDS] = {BP_OPT_ADAM, BP_OPT_LBFGS, BP_OPT_MOMENTUM, BP_OPT_GD};
    c.optimizer = opt[k];
    c.batch_size = k == 0 || k == 2 ? 5 : 0;
    if (k == 0) {
        c.validation_split = 0.25;
        c.early_stopping_patience = 3;
    }
    bp_data d = {.X = X, .Y = Y, .labels = NULL, .m = CK_ROWS, .n_in = CK_IN, .n_out = CK_OUT};
    return bp_trainer_new(&spec, &c, &d, NULL, err);
}

/* The image's FNV-1a checksum (its last 8 bytes) made right, so that mutations reach the
 * field checks behind it rather than stopping at the checksum. */
static void ck_fix_checksum(unsigned char *img, size_t n)
{
    if (n < 8)
        return;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n - 8; i++) {
        h ^= img[i];
        h *= 0x100000001b3ULL;
    }
    for (int i = 0; i < 8; i++)
        img[n - 8 + i] = (unsigned char)(h >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bp_error err;
    bp_trainer *t = ck_trainer(data[0] % CK_KINDS, &err);
    ck_check(t != NULL);
    size_t len = size - 1;
    unsigned char *image = malloc(len ? len : 1);
    ck_check(image != NULL);
    memcpy(image, data + 1, len);
    if (!(data[0] & 0x80)) /* the first byte's top bit set: the checksum as it came */
        ck_fix_checksum(image, len);
    if (bp_trainer_checkpoint_load(t, image, len, &err) == 0) {
        size_t n = bp_trainer_checkpoint_size(t);
        unsigned char *img = malloc(n ? n : 1);
        ck_check(img != NULL);
        ck_check(bp_trainer_checkpoint_save(t, img, n, &err) == 0);
        if (len > 4 && image[4] == 3) { /* this build's version: saved back byte for byte */
            ck_check(n == len);
            ck_check(memcmp(img, image, n) == 0);
        } else { /* an older version: saved as the current one, which loads again */
            ck_check(bp_trainer_checkpoint_load(t, img, n, &err) == 0);
        }
        free(img);
        bp_progress p;
        bp_trainer_epoch(t, &p, NULL, &err);
    }
    free(image);
    bp_trainer_free(t);
    return 0;
}
