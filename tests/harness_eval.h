/* harness_eval.h — what the evaluation tests (http_evaluate.c, http_model.c) share: a job's
 * served weights and a forward pass over them in this process's own loops (never the server's
 * code), the classification report recomputed from them, small synthetic datasets, and POST
 * helpers that assert a status or a problem. Implemented in tests/harness/eval.c; they assert
 * with Criterion, so call them from a test's own process.
 */
#ifndef BACKPROPD_HARNESS_EVAL_H
#define BACKPROPD_HARNESS_EVAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/harness.h"

#define MAXU 64

/* The served weights (GET …/weights) parsed: layers, output kind, theta. */
typedef struct {
    int L, sizes[8];
    char out[16], act[16];
    double *theta;
    double mean[MAXU], sd[MAXU];
    int standardized;
} eval_model;

void eval_model_get(const srv *s, const char *job, eval_model *m);

/* a (s_L) = the model's output for one raw input x: standardized when the model is, then
 * the layers in plain loops. */
void eval_forward(double *a_out, const eval_model *m, const double *x_raw);

/* λ/(2m) Σ non-bias θ². */
double eval_reg_term(const eval_model *m, double lambda, int64_t rows);

/* The number at key of o (asserted to be one). */
double eval_num(const json_t *o, const char *key);

/* got within 1e-9 (relative, at least absolute) of want. */
void eval_near(double got, double want, const char *what);

/* POST path with a JSON body, asserting the status; the answer (new). */
json_t *eval_post(const srv *s, const char *path, const char *body, long status);

/* POST path expecting a problem whose detail starts with prefix. */
void eval_post_problem(const srv *s, const char *path, const char *body, long status,
                       const char *prefix);

/* Uploads a JSON dataset, returns its id in id. */
void eval_upload_json(const srv *s, const char *body, char *id, size_t len);

/* Submits and waits for success; the job id into id. */
void eval_train(const srv *s, const char *body, char *id, size_t len);

/* A small synthetic dataset: rows of n features x (mixed scales, feature 2 constant when
 * n > 2), a binary label by a noisy rule, and a regression target; as JSON text with "y" or
 * "Y" (kind 'y' labels, 'Y' the target). Also fills X, y, t. */
char *eval_synth(int rows, int n, char kind, double *X, int *y, double *t);

/* The report for labels y of rows X checked against figures computed here. */
void eval_check_classes(const json_t *rep, const eval_model *m, const double *X, const int *y,
                        int rows, double lambda);

/* POST /v1/datasets?query with body (media type), asserting status; the answer (new). */
json_t *eval_upload(const srv *s, const char *query, const char *media, const char *body,
                    long status);

/* arr is exactly the n strings of want. */
void eval_expect_names(const json_t *arr, const char *const *want, size_t n);

#endif
