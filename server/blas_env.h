/* blas_env.h — makes OpenBLAS use the right kernels and thread count.
 *
 * Debian's OpenBLAS 0.3.21 does not recognise recent Intel CPUs and falls back to Prescott
 * kernels (measured here: dgemm 2048³ on 2 threads 31 GFLOP/s default, 81 Haswell, 153–158
 * SkylakeX/Cooperlake). The kernel is picked when the library loads, before main(), so the only
 * reliable fix without rebuilding OpenBLAS is to set OPENBLAS_CORETYPE and re-exec ourselves.
 */
#ifndef BACKPROPD_BLAS_ENV_H
#define BACKPROPD_BLAS_ENV_H

/* Call first thing in main(). If OPENBLAS_CORETYPE is unset and the CPU has AVX-512F (→
 * "SkylakeX") or AVX2 (→ "Haswell"), sets it and re-execs /proc/self/exe with the same argv
 * (argv is borrowed; a marker variable prevents loops). Returns normally when nothing needs to
 * change or the re-exec fails (then the slow kernels are used). */
void blas_env_setup(char **argv);

/* Number of threads BLAS calls may use from now on (process-wide; n >= 1). */
void blas_set_threads(int n);
int blas_get_threads(void);

/* The kernel family OpenBLAS is using, e.g. "SkylakeX" (borrowed, static string). */
const char *blas_core_name(void);

#endif
