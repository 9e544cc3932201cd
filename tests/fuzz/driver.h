/* tests/fuzz/driver.h — the Criterion driver every fuzz target shares in `make test`: included
 * after the target (which defines LLVMFuzzerTestOneInput) with FUZZ_CORPUS naming its corpus
 * folder. It replays every file of the corpus (and every prefix of the small ones), then a
 * fixed-seed series of mutations of them (byte flips, tokens inserted, ranges deleted or
 * repeated, corpus files spliced), bounded to a few seconds. Each input is copied into a
 * buffer of exactly its size, so under ASan (make VARIANT=asan) any read past it is caught;
 * a crash or a trap fails the test. Files named crash-* in a corpus are past findings: they
 * are replayed like the rest, so each stays fixed.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FUZZ_CORPUS
#error "define FUZZ_CORPUS (a folder under tests/fuzz) before including driver.h"
#endif
#ifndef FUZZ_MIN_CORPUS
#define FUZZ_MIN_CORPUS 5
#endif

#define MAX_CORPUS 256
#define MUTATIONS 1000000
#define MUTATE_SECONDS 4.0

typedef struct {
    unsigned char *data;
    size_t size;
} input;

static input corpus[MAX_CORPUS];
static size_t n_corpus;

static void load_corpus(void)
{
    const char *dirs[] = {"tests/fuzz/" FUZZ_CORPUS, "../tests/fuzz/" FUZZ_CORPUS};
    DIR *dir = NULL;
    const char *base = NULL;
    for (size_t i = 0; i < 2 && !dir; i++)
        if ((dir = opendir(dirs[i])))
            base = dirs[i];
    cr_assert(dir, "tests/fuzz/%s not found (run from the repository root)", FUZZ_CORPUS);
    struct dirent *e;
    while ((e = readdir(dir)) && n_corpus < MAX_CORPUS) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        FILE *f = fopen(path, "rb");
        cr_assert(f, "%s", path);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        cr_assert(n >= 0);
        input *in = &corpus[n_corpus++];
        in->size = (size_t)n;
        in->data = malloc(in->size + 1);
        cr_assert(in->data);
        cr_assert_eq(fread(in->data, 1, in->size, f), in->size, "%s", path);
        fclose(f);
    }
    closedir(dir);
    cr_assert(n_corpus >= FUZZ_MIN_CORPUS, "only %zu corpus files", n_corpus);
}

static void free_corpus(void)
{
    for (size_t i = 0; i < n_corpus; i++)
        free(corpus[i].data);
    n_corpus = 0;
}

/* The input being run, printed (hex) by the signal handler when the target crashes or traps,
 * so a finding can be saved into the corpus as crash-<what> and replayed from then on. */
static const unsigned char *cur_data;
static size_t cur_size;

static void on_crash(int sig)
{
    static const char hex[] = "0123456789abcdef";
    char line[2 * 64 + 2];
    const char *head = "\nfuzz driver: the input that crashed, in hex:\n";
    ssize_t w = write(2, head, strlen(head));
    for (size_t i = 0; cur_data && i < cur_size; i += 64) {
        size_t k = 0;
        for (size_t j = i; j < cur_size && j < i + 64; j++) {
            line[k++] = hex[cur_data[j] >> 4];
            line[k++] = hex[cur_data[j] & 15];
        }
        line[k++] = '\n';
        w = write(2, line, k);
    }
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Runs the target on exactly these bytes (a fresh buffer of exactly n bytes). */
static void run_one(const unsigned char *data, size_t n)
{
    unsigned char *copy = malloc(n ? n : 1);
    cr_assert(copy);
    memcpy(copy, data, n);
    cur_data = copy;
    cur_size = n;
    if (signal(SIGILL, on_crash) == SIG_ERR || signal(SIGSEGV, on_crash) == SIG_ERR)
        cr_assert_fail("cannot install the crash handler");
    LLVMFuzzerTestOneInput(copy, n);
    cur_data = NULL;
    free(copy);
}

Test(fuzz, corpus_replays, .init = load_corpus, .fini = free_corpus, .timeout = 120)
{
    for (size_t i = 0; i < n_corpus; i++) {
        run_one(corpus[i].data, corpus[i].size);
        /* and every prefix of the small ones: truncated texts end in every state */
        for (size_t k = 0; corpus[i].size <= 512 && k < corpus[i].size; k++)
            run_one(corpus[i].data, k);
    }
}

static uint64_t fz_state = 0x2545F4914F6CDD1Dull;
static uint64_t fz_next(void)
{
    fz_state ^= fz_state << 13;
    fz_state ^= fz_state >> 7;
    fz_state ^= fz_state << 17;
    return fz_state;
}

/* One mutation of buf (n bytes, capacity cap) in place; returns the new size. */
static size_t mutate(unsigned char *buf, size_t n, size_t cap)
{
    static const char *tokens[] = {"{", "}", "[", "]", "\"", ",", ":", "\\", "\\u0000",
                                   "\x7f", "\x01", "\xC3\xA9", "\xFF", "-", "0", "1e999",
                                   "9223372036854775808", "-0.0", "1.5", "null", "true",
                                   "\"layers\"", "\"network\"", "\"X\"", "\"y\"", "\n", "\r\n",
                                   ",,", "1O", "9007199254740993", "[[1,2],[3,4]]", "e", "."};
    size_t pos = n ? (size_t)(fz_next() % (n + 1)) : 0;
    switch (fz_next() % 5) {
    case 0: /* flip a byte */
        if (n)
            buf[pos % n] ^= (unsigned char)(1u << (fz_next() % 8));
        return n;
    case 1: { /* insert a token */
        const char *t = tokens[fz_next() % (sizeof tokens / sizeof *tokens)];
        size_t k = strlen(t);
        if (n + k > cap)
            return n;
        memmove(buf + pos + k, buf + pos, n - pos);
        memcpy(buf + pos, t, k);
        return n + k;
    }
    case 2: { /* delete a range */
        size_t k = (size_t)(fz_next() % 16);
        if (pos + k > n)
            k = n - pos;
        memmove(buf + pos, buf + pos + k, n - pos - k);
        return n - k;
    }
    case 3: { /* repeat a range */
        size_t k = (size_t)(fz_next() % 32);
        if (pos + k > n)
            k = n - pos;
        if (n + k > cap)
            return n;
        memmove(buf + pos + k, buf + pos, n - pos);
        return n + k;
    }
    default: { /* splice in the tail of another corpus file */
        const input *o = &corpus[fz_next() % n_corpus];
        size_t from = o->size ? (size_t)(fz_next() % o->size) : 0, k = o->size - from;
        if (pos + k > cap)
            k = cap - pos;
        memcpy(buf + pos, o->data + from, k);
        return pos + k;
    }
    }
}

Test(fuzz, mutations_of_the_corpus, .init = load_corpus, .fini = free_corpus, .timeout = 120)
{
    size_t cap = 1 << 16;
    unsigned char *buf = malloc(cap);
    cr_assert(buf);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int i;
    for (i = 0; i < MUTATIONS; i++) {
        const input *in = &corpus[fz_next() % n_corpus];
        size_t n = in->size < cap ? in->size : cap;
        memcpy(buf, in->data, n);
        for (int m = 1 + (int)(fz_next() % 4); m > 0; m--)
            n = mutate(buf, n, cap);
        run_one(buf, n);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 >
            MUTATE_SECONDS)
            break;
    }
    cr_log_info("%d mutations run", i);
    cr_assert(i >= 100, "only %d mutations in %.0f s", i, MUTATE_SECONDS);
    free(buf);
}
