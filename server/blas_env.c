/* blas_env.c — OpenBLAS kernel selection by re-exec, and the BLAS thread count (see
 * blas_env.h for why the re-exec is needed). No state of our own: the environment carries it.
 */
#include "server/blas_env.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

/* Set in the environment of the re-exec'd process; removed again once we see it. */
#define REEXEC_MARKER "BACKPROPD_BLAS_REEXEC"

void blas_env_setup(char **argv)
{
    if (getenv(REEXEC_MARKER)) {
        unsetenv(REEXEC_MARKER); /* second run: never loop, keep children's env clean */
        return;
    }
    if (getenv("OPENBLAS_CORETYPE") || !argv || !argv[0])
        return;
    const char *core = NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        core = "SkylakeX";
    else if (__builtin_cpu_supports("avx2"))
        core = "Haswell";
    if (!core)
        return;
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0 || setenv(REEXEC_MARKER, "1", 1) != 0)
        return;
    /* exec the resolved path, not /proc/self/exe, so ps/top still show "backpropd" */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        execv(self, argv);
    }
    /* exec failed (no /proc?): carry on with the kernels already loaded */
    unsetenv(REEXEC_MARKER);
    unsetenv("OPENBLAS_CORETYPE");
}

void blas_set_threads(int n)
{
    openblas_set_num_threads(n < 1 ? 1 : n);
}

int blas_get_threads(void)
{
    return openblas_get_num_threads();
}

const char *blas_core_name(void)
{
    return openblas_get_corename();
}
