/* handlers_model.h — a job's trained model as the handlers that compute with it (weights,
 * gradient, predict, evaluate, exports) load it: the network and training config from the
 * stored spec text, the standardization kept with it, and the latest weights (the live copy
 * while the job runs here, else the store's). Replies for failures are set here.
 */
#ifndef BACKPROPD_HANDLERS_MODEL_H
#define BACKPROPD_HANDLERS_MODEL_H

#include <stdint.h>

#include "api/jobs_codec.h"
#include "core/bp.h"
#include "server/http/http.h"
#include "server/server.h"

/* A job's model: its network and training config, standardization, and latest weights. */
typedef struct {
    bp_spec spec;
    bp_train_config cfg;
    api_job_extras extras; /* extras.mean / extras.sd: s_1 each when it trained standardized,
                            * else NULL; extras.from_job: the job it warm-started from;
                            * extras.classes_json: its dataset's class names or NULL */
    double *theta;   /* new: bp_param_count(&spec) doubles */
    int64_t epoch;   /* the epoch the weights are from */
    double cost, validation_cost; /* its J on the training / held-out rows (NaN = none) */
} handlers_model;
void handlers_model_clear(handlers_model *m); /* frees theta and the extras; NULL ok */

/* Step 1: *m cleared, its spec, config and extras from spec_json. 0 ok; -1 with a 500 reply
 * (the stored spec is unreadable). */
int handlers_model_spec(req *r, const char *id, const char *spec_json, handlers_model *m);
/* Step 2: the weights of job id (owner's) for m->spec, from the live copy while the job runs
 * here, else from the store. 0 ok (m->theta new); -1 with the reply set: the store's problem,
 * 503 out of memory, 409 no weights yet (status: the job's status for that message, or NULL). */
int handlers_model_weights(server *s, req *r, const char *owner, const char *id,
                           const char *status, handlers_model *m);
/* Both steps: 0 ok (handlers_model_clear m), -1 with the reply set. */
int handlers_model_load(server *s, req *r, const char *owner, const char *id,
                        const char *spec_json, const char *status, handlers_model *m);
/* What a new job (jr, its dataset already checked to exist and fit) keeps with its model, into
 * x (new, api_job_extras_clear): with jr->from_job, that job's final or latest weights become
 * jr->theta0 and its standardization is kept (jr->train.standardize set to match; 404 naming
 * from_job when the caller has no such job, 422 when its network differs, 409 without
 * weights); else with training.standardize the dataset's training rows' mean and sd
 * (bp_split_mark's rows skipped). 0 ok, -1 with err. */
int handlers_model_prepare(server *s, req *r, api_job_request *jr, api_job_extras *x,
                           api_error *err);
/* X (rows × s_1) standardized in place when the model trained standardized; else as is. */
void handlers_model_inputs(const handlers_model *m, double *X, int64_t rows);

#endif
