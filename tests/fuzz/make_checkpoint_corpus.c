/* make_checkpoint_corpus.c — writes the seed corpus of the checkpoint fuzz target
 * (tests/fuzz/corpus_checkpoint): for each trainer kind of fuzz_checkpoint.c, its checkpoint
 * image after 0, 2 and 5 epochs, prefixed by the kind byte. Run by `make fuzz-corpus`; the
 * output is committed. Usage: make_checkpoint_corpus DIR
 */
#include <stdio.h>

#include "tests/fuzz/fuzz_checkpoint.c"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (int k = 0; k < CK_KINDS; k++) {
        bp_error err;
        bp_trainer *t = ck_trainer(k, &err);
        if (!t) {
            fprintf(stderr, "trainer %d: %s\n", k, err.msg);
            return 1;
        }
        int done = 0;
        const int at[] = {0, 2, 5};
        for (int i = 0; i < 3; i++) {
            bp_progress p;
            while (done < at[i] && bp_trainer_epoch(t, &p, NULL, &err) == BP_TRAIN_CONTINUE)
                done++;
            size_t n = bp_trainer_checkpoint_size(t);
            unsigned char *img = malloc(n + 1);
            img[0] = (unsigned char)k;
            if (bp_trainer_checkpoint_save(t, img + 1, n, &err) != 0) {
                fprintf(stderr, "save: %s\n", err.msg);
                return 1;
            }
            char path[512];
            snprintf(path, sizeof path, "%s/kind%d_epoch%d.ckpt", argv[1], k, at[i]);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(img, 1, n + 1, f) != n + 1 || fclose(f) != 0) {
                fprintf(stderr, "cannot write %s\n", path);
                return 1;
            }
            free(img);
        }
        bp_trainer_free(t);
    }
    return 0;
}
