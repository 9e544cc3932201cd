/* jobs_codec.c — JSON for training jobs (jobs_codec.h): the strict POST /v1/jobs parser (every
 * unknown key and bad value named by where it is: 'training: unknown key "foo"',
 * "training.epochs: …"), the canonical spec text the store keeps with each job and its parser
 * back, and the encoders for jobs, progress, cost history and weights. Pure jansson; no HTTP,
 * no storage.
 */
#include "jobs_codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ small helpers */

json_t *api_number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

const char *api_time_rfc3339(int64_t unix_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(unix_ms / 1000);
    int ms = (int)(unix_ms % 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(buf, len, "1970-01-01T00:00:00.000Z");
        return buf;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}

json_t *api_time_json(int64_t unix_ms)
{
    char buf[40];
    if (unix_ms <= 0)
        return json_null();
    return json_string(api_time_rfc3339(unix_ms, buf, sizeof buf));
}

/* ------------------------------------------------------------------ training config */

static const char *const optimizer_names[] = {"gd", "sgd", "momentum", "adam", "lbfgs"};

int api_training_parse(bp_train_config *out, const json_t *j, const char *field, api_error *err)
{
    static const char *const keys[] = {
        "optimizer", "learning_rate", "lambda", "epochs", "batch_size", "seed",
        "validation_split", "early_stopping_patience", "init_epsilon", "momentum", "beta1",
        "beta2", "adam_epsilon", "lbfgs_memory", NULL};
    bp_train_config c;
    bp_train_config_default(&c);
    if (j && !json_is_null(j)) {
        if (!json_is_object(j)) {
            api_fail(err, 400, "%s: expected an object like {\"optimizer\": \"adam\"}", field);
            return -1;
        }
        if (api_check_keys(j, keys, field, err) < 0)
            return -1;
        const json_t *v;
        int64_t n;
        double x;
        if ((v = json_object_get(j, "optimizer"))) {
            int found = -1;
            for (int i = 0; json_is_string(v) && i < 5; i++)
                if (strcmp(json_string_value(v), optimizer_names[i]) == 0)
                    found = i;
            if (found < 0) {
                api_fail(err, 400, "%s.optimizer: must be one of gd, sgd, momentum, adam, lbfgs",
                         field);
                return -1;
            }
            c.optimizer = (bp_optimizer)found;
        }
        if ((v = json_object_get(j, "learning_rate"))) {
            if (api_number(&x, v, 0, INFINITY, API_LO_OPEN, err, "%s.learning_rate", field) < 0)
                return -1;
            c.learning_rate = x;
        }
        if ((v = json_object_get(j, "lambda"))) {
            if (api_number(&x, v, 0, INFINITY, 0, err, "%s.lambda", field) < 0)
                return -1;
            c.lambda = x;
        }
        if ((v = json_object_get(j, "epochs"))) {
            if (api_int(&n, v, 1, API_JOB_MAX_EPOCHS, err, "%s.epochs", field) < 0)
                return -1;
            c.epochs = n;
        }
        if ((v = json_object_get(j, "batch_size"))) {
            if (api_int(&n, v, 0, 1000000000, err, "%s.batch_size", field) < 0)
                return -1;
            c.batch_size = n;
        }
        if ((v = json_object_get(j, "seed"))) {
            if (api_int(&n, v, 0, INT64_MAX, err, "%s.seed", field) < 0)
                return -1;
            c.seed = (uint64_t)n;
        }
        if ((v = json_object_get(j, "validation_split"))) {
            if (api_number(&x, v, 0, 1, API_HI_OPEN, err, "%s.validation_split", field) < 0)
                return -1;
            c.validation_split = x;
        }
        if ((v = json_object_get(j, "early_stopping_patience"))) {
            if (api_int(&n, v, 0, API_JOB_MAX_EPOCHS, err, "%s.early_stopping_patience",
                        field) < 0)
                return -1;
            c.early_stopping_patience = n;
        }
        if ((v = json_object_get(j, "init_epsilon")) && !json_is_null(v)) {
            if (api_number(&x, v, 0, INFINITY, API_LO_OPEN | API_OR_NULL, err, "%s.init_epsilon", field) < 0)
                return -1;
            c.init_epsilon = x;
        }
        if ((v = json_object_get(j, "momentum"))) {
            if (api_number(&x, v, 0, 1, API_HI_OPEN, err, "%s.momentum", field) < 0)
                return -1;
            c.momentum = x;
        }
        if ((v = json_object_get(j, "beta1"))) {
            if (api_number(&x, v, 0, 1, API_HI_OPEN, err, "%s.beta1", field) < 0)
                return -1;
            c.beta1 = x;
        }
        if ((v = json_object_get(j, "beta2"))) {
            if (api_number(&x, v, 0, 1, API_HI_OPEN, err, "%s.beta2", field) < 0)
                return -1;
            c.beta2 = x;
        }
        if ((v = json_object_get(j, "adam_epsilon"))) {
            if (api_number(&x, v, 0, INFINITY, API_LO_OPEN, err, "%s.adam_epsilon", field) < 0)
                return -1;
            c.adam_eps = x;
        }
        if ((v = json_object_get(j, "lbfgs_memory"))) {
            if (api_int(&n, v, 1, API_JOB_MAX_LBFGS_MEMORY, err, "%s.lbfgs_memory", field) < 0)
                return -1;
            c.lbfgs_memory = (int)n;
        }
    }
    if (c.early_stopping_patience > 0 && !(c.validation_split > 0)) {
        api_fail(err, 400, "%s.early_stopping_patience: needs validation_split > 0", field);
        return -1;
    }
    bp_error be;
    be.msg[0] = '\0';
    if (bp_train_config_validate(&c, &be) < 0) {
        /* The core names the config field; put it under the JSON path. */
        size_t fl = strlen(field);
        if (strncmp(be.msg, field, fl) == 0 && be.msg[fl] == '.')
            api_fail(err, 400, "%s", be.msg);
        else
            api_fail(err, 400, "%s.%s", field, be.msg[0] ? be.msg : "invalid");
        return -1;
    }
    *out = c;
    return 0;
}

json_t *api_training_json(const bp_train_config *c)
{
    const char *opt = (unsigned)c->optimizer < 5 ? optimizer_names[c->optimizer] : "gd";
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "optimizer", json_string(opt));
    bad |= json_object_set_new(o, "learning_rate", json_real(c->learning_rate));
    bad |= json_object_set_new(o, "lambda", json_real(c->lambda));
    bad |= json_object_set_new(o, "epochs", json_integer((json_int_t)c->epochs));
    bad |= json_object_set_new(o, "batch_size", json_integer((json_int_t)c->batch_size));
    bad |= json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
    bad |= json_object_set_new(o, "validation_split", json_real(c->validation_split));
    bad |= json_object_set_new(o, "early_stopping_patience",
                               json_integer((json_int_t)c->early_stopping_patience));
    bad |= json_object_set_new(o, "init_epsilon",
                               c->init_epsilon > 0 ? json_real(c->init_epsilon) : json_null());
    bad |= json_object_set_new(o, "momentum", json_real(c->momentum));
    bad |= json_object_set_new(o, "beta1", json_real(c->beta1));
    bad |= json_object_set_new(o, "beta2", json_real(c->beta2));
    bad |= json_object_set_new(o, "adam_epsilon", json_real(c->adam_eps));
    bad |= json_object_set_new(o, "lbfgs_memory", json_integer(c->lbfgs_memory));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------ the request */

void api_job_request_clear(api_job_request *r)
{
    if (!r)
        return;
    free(r->theta0);
    memset(r, 0, sizeof *r);
}

int api_job_request_parse(api_job_request *out, const json_t *body, api_error *err)
{
    static const char *const keys[] = {"network", "dataset", "training", "theta", NULL};
    memset(out, 0, sizeof *out);
    if (!json_is_object(body)) {
        api_fail(err, 400, "body: expected an object {\"network\", \"dataset\", \"training\"}");
        return -1;
    }
    if (api_check_keys(body, keys, "body", err) < 0)
        return -1;
    const json_t *net = json_object_get(body, "network");
    if (!net) {
        api_fail(err, 400, "network: missing");
        return -1;
    }
    if (api_spec_parse(&out->spec, net, "network", err) < 0)
        return -1;
    bp_error be;
    be.msg[0] = '\0';
    if (bp_spec_validate(&out->spec, &be) < 0) {
        api_fail(err, 400, "network.%s", be.msg);
        return -1;
    }
    const json_t *ds = json_object_get(body, "dataset");
    if (!json_is_string(ds) || strncmp(json_string_value(ds), "ds_", 3) != 0 ||
        strlen(json_string_value(ds)) >= sizeof out->dataset) {
        api_fail(err, 400, "dataset: %s", ds ? "expected a dataset id like \"ds_…\"" : "missing");
        return -1;
    }
    snprintf(out->dataset, sizeof out->dataset, "%s", json_string_value(ds));
    if (api_training_parse(&out->train, json_object_get(body, "training"), "training", err) < 0)
        return -1;
    const json_t *th = json_object_get(body, "theta");
    if (th && !json_is_null(th)) {
        out->theta0 = api_theta_parse(th, &out->spec, "theta", err);
        if (!out->theta0)
            return -1;
        int64_t bad;
        if (bp_check_finite(out->theta0, bp_param_count(&out->spec), &bad) < 0) {
            api_fail(err, 400, "theta: value %lld is not finite", (long long)bad);
            api_job_request_clear(out);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ canonical spec text */

static json_t *spec_object(const bp_spec *spec, const bp_train_config *c)
{
    json_t *net = api_spec_json(spec);
    json_t *tr = api_training_json(c);
    if (!net || !tr) {
        json_decref(net);
        json_decref(tr);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "network", net, "training", tr);
}

char *api_job_spec_dump(const bp_spec *spec, const bp_train_config *c)
{
    json_t *o = spec_object(spec, c);
    if (!o)
        return NULL;
    char *s = api_dump(o, NULL);
    json_decref(o);
    return s;
}

int api_job_spec_parse(bp_spec *spec, bp_train_config *c, const char *text, api_error *err)
{
    static const char *const keys[] = {"network", "training", NULL};
    int rc = -1;
    json_error_t jerr;
    json_t *o = text ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(o)) {
        api_fail(err, 500, "stored job spec: unreadable");
        goto cleanup;
    }
    if (api_check_keys(o, keys, "stored job spec", err) < 0)
        goto cleanup;
    if (api_spec_parse(spec, json_object_get(o, "network"), "network", err) < 0)
        goto cleanup;
    if (api_training_parse(c, json_object_get(o, "training"), "training", err) < 0)
        goto cleanup;
    rc = 0;
cleanup:
    json_decref(o);
    return rc;
}

/* ------------------------------------------------------------------ answers */

json_t *api_job_progress_json(const api_job_progress *p)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:o}", "epoch", (json_int_t)p->epoch,
                     "epochs", (json_int_t)p->epochs, "cost", api_number_or_null(p->cost),
                     "validation_cost", api_number_or_null(p->validation_cost), "accuracy",
                     api_number_or_null(p->accuracy), "samples_per_second",
                     api_number_or_null(p->samples_per_second));
}

json_t *api_job_json(const api_job_view *v)
{
    json_t *spec = NULL, *out = NULL;
    json_error_t jerr;
    spec = v->spec_json ? json_loads(v->spec_json, 0, &jerr) : NULL;
    if (!json_is_object(spec))
        goto cleanup;
    json_t *net = json_object_get(spec, "network");
    json_t *tr = json_object_get(spec, "training");
    if (!net || !tr)
        goto cleanup;
    out = json_pack("{s:s, s:s, s:O, s:s, s:O, s:o, s:o, s:o, s:o, s:o}", "id", v->id, "status",
                    v->status, "network", net, "dataset", v->dataset, "training", tr,
                    "progress", api_job_progress_json(&v->progress), "created_at",
                    api_time_json(v->created_at_ms), "started_at",
                    api_time_json(v->started_at_ms), "finished_at",
                    api_time_json(v->finished_at_ms), "error",
                    v->error && v->error[0] ? json_string(v->error) : json_null());
cleanup:
    json_decref(spec);
    return out;
}

json_t *api_job_history_json(const int64_t *epoch, const double *cost,
                             const double *validation_cost, size_t n)
{
    json_t *e = json_array(), *c = json_array(), *vc = json_array();
    int bad = !e || !c || !vc;
    for (size_t i = 0; i < n && !bad; i++) {
        bad |= json_array_append_new(e, json_integer((json_int_t)epoch[i]));
        bad |= json_array_append_new(c, api_number_or_null(cost[i]));
        bad |= json_array_append_new(vc, api_number_or_null(validation_cost[i]));
    }
    if (bad) {
        json_decref(e);
        json_decref(c);
        json_decref(vc);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:o}", "epoch", e, "cost", c, "validation_cost", vc);
}

json_t *api_job_weights_json(const bp_spec *spec, const double *theta, int64_t epoch,
                             double cost)
{
    json_t *net = api_spec_json(spec);
    json_t *th = api_theta_json(theta, spec);
    if (!net || !th) {
        json_decref(net);
        json_decref(th);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:I, s:o}", "network", net, "theta", th, "epoch",
                     (json_int_t)epoch, "cost", api_number_or_null(cost));
}
