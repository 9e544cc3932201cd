/* files.c — test data files: where tests/data is from wherever a test or benchmark runs, and
 * reading a whole file. No Criterion here (the benchmarks use it too). */
#include "tests/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *test_data_path(const char *name)
{
    static __thread char path[512];
    static const char *const dirs[] = {"tests/data", "../tests/data", "../../tests/data",
                                       "../../../tests/data"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        if (access(path, R_OK) == 0)
            return path;
    }
    snprintf(path, sizeof path, "tests/data/%s", name);
    return path;
}

char *test_slurp(const char *path, size_t *len)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0)
        goto cleanup;
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto cleanup;
    buf = malloc((size_t)n + 1);
    if (!buf)
        goto cleanup;
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
        goto cleanup;
    }
    buf[n] = '\0';
    *len = (size_t)n;
cleanup:
    if (f)
        fclose(f);
    return buf;
}
