/* jobs_codec.c — JSON for training jobs (jobs_codec.h): the strict POST /v1/jobs parser (every
 * unknown key and bad value named by where it is: 'training: unknown key "foo"',
 * "training.epochs: …"), the canonical spec text the store keeps with each job and its parser
 * back, and the encoders for jobs, progress, cost history and weights. Pure jansson; no HTTP,
 * no storage.
 */
#include "api/jobs_codec.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
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

/* JSON types of the training fields; the ranges are the core's. */
typedef enum {
    TF_OPTIMIZER,      /* bp_optimizer from its name (an unknown name: an invalid value) */
    TF_NUMBER,         /* double */
    TF_NUMBER_OR_NULL, /* double, null = 0 (the core's "default") */
    TF_INT64,          /* int64_t: an integer (an integral real counts) */
    TF_INT,            /* int, likewise */
    TF_SEED,           /* uint64_t from an integer in 0..INT64_MAX */
    TF_BOOL,           /* int 0/1 from true/false (anything else: -1, which the core names) */
    TF_PRECISION       /* bp_precision from "float64" / "float32" (else -1: the core names it) */
} tf_type;

/* One "training" field: its JSON name, type, and where it lives in bp_train_config (every
 * optimizer accepts every field and keeps it; each reads its own). */
typedef struct {
    const char *name;
    tf_type type;
    size_t offset;
} train_field;

#define TF(name, type, member) {name, type, offsetof(bp_train_config, member)}
static const train_field train_fields[] = {
    TF("optimizer", TF_OPTIMIZER, optimizer),
    TF("learning_rate", TF_NUMBER, learning_rate),
    TF("lambda", TF_NUMBER, lambda),
    TF("epochs", TF_INT64, epochs),
    TF("batch_size", TF_INT64, batch_size),
    TF("seed", TF_SEED, seed),
    TF("validation_split", TF_NUMBER, validation_split),
    TF("early_stopping_patience", TF_INT64, early_stopping_patience),
    TF("init_epsilon", TF_NUMBER_OR_NULL, init_epsilon),
    TF("momentum", TF_NUMBER, momentum),
    TF("beta1", TF_NUMBER, beta1),
    TF("beta2", TF_NUMBER, beta2),
    TF("adam_epsilon", TF_NUMBER, adam_eps),
    TF("lbfgs_memory", TF_INT, lbfgs_memory),
    TF("standardize", TF_BOOL, standardize),
    TF("precision", TF_PRECISION, precision),
};
#undef TF
#define N_TRAIN_FIELDS (sizeof train_fields / sizeof train_fields[0])

/* Stores JSON value v of field f into *c. A value the field's C type cannot hold (not a
 * number, not an integer, out of its range) is stored as one outside every range of the core
 * (NaN, INT64_MIN, INT_MIN), so the core's validation names the field and its range: the
 * ranges live in the core alone. The seed's range is the contract's (0..2^63-1, what the store
 * keeps), read with the one integer reader. 0 ok, -1 with err. */
static int set_field(bp_train_config *c, const train_field *f, const json_t *v,
                     const char *path, api_error *err)
{
    char *at = (char *)c + f->offset;
    int64_t n = 0;
    api_error ignored = {0};
    switch (f->type) {
    case TF_OPTIMIZER: {
        int found = -1;
        for (int i = BP_OPT_GD; json_is_string(v) && i <= BP_OPT_LBFGS; i++)
            if (strcmp(json_string_value(v), bp_optimizer_name((bp_optimizer)i)) == 0)
                found = i;
        *(bp_optimizer *)(void *)at = (bp_optimizer)found; /* -1: the core names it */
        return 0;
    }
    case TF_NUMBER_OR_NULL:
    case TF_NUMBER: {
        double x = NAN;
        if (json_is_null(v) && f->type == TF_NUMBER_OR_NULL)
            x = 0.0;
        else if (api_number(&x, v, -INFINITY, INFINITY, 0, &ignored, "%s", f->name) < 0)
            x = NAN;
        *(double *)(void *)at = x;
        return 0;
    }
    case TF_INT64:
        if (api_int(&n, v, INT64_MIN + 1, INT64_MAX, &ignored, "%s", f->name) < 0)
            n = INT64_MIN;
        *(int64_t *)(void *)at = n;
        return 0;
    case TF_INT:
        if (api_int(&n, v, INT_MIN + 1, INT_MAX, &ignored, "%s", f->name) < 0)
            n = INT_MIN;
        *(int *)(void *)at = (int)n;
        return 0;
    case TF_BOOL:
        *(int *)(void *)at = json_is_boolean(v) ? json_is_true(v) : -1;
        return 0;
    case TF_PRECISION: {
        int found = -1;
        for (int i = BP_FLOAT64; json_is_string(v) && i <= BP_FLOAT32; i++)
            if (strcmp(json_string_value(v), bp_precision_name((bp_precision)i)) == 0)
                found = i;
        *(bp_precision *)(void *)at = (bp_precision)found;
        return 0;
    }
    case TF_SEED:
        if (api_int(&n, v, 0, INT64_MAX, err, "%s.%s", path, f->name) < 0)
            return -1;
        *(uint64_t *)(void *)at = (uint64_t)n;
        return 0;
    }
    api_fail(err, 400, "%s.%s: unsupported field type", path, f->name);
    return -1;
}

int api_training_parse(bp_train_config *out, const json_t *j, const char *field, api_error *err)
{
    const char *keys[N_TRAIN_FIELDS + 1];
    for (size_t i = 0; i < N_TRAIN_FIELDS; i++)
        keys[i] = train_fields[i].name;
    keys[N_TRAIN_FIELDS] = NULL;
    bp_train_config c;
    bp_train_config_default(&c);
    if (j && !json_is_null(j)) {
        if (!json_is_object(j)) {
            api_fail(err, 400, "%s: expected an object like {\"optimizer\": \"adam\"}", field);
            return -1;
        }
        if (api_check_keys(j, keys, field, err) < 0)
            return -1;
        for (size_t i = 0; i < N_TRAIN_FIELDS; i++) {
            const json_t *v = json_object_get(j, train_fields[i].name);
            if (v && set_field(&c, &train_fields[i], v, field, err) < 0)
                return -1;
        }
    }
    bp_error be;
    be.msg[0] = '\0';
    if (bp_train_config_validate(&c, &be) < 0) {
        /* The core names the field; put it under the JSON path. */
        api_fail(err, 400, "%s.%s", field, be.msg[0] ? be.msg : "invalid");
        return -1;
    }
    *out = c;
    return 0;
}

json_t *api_training_json(const bp_train_config *c)
{
    const char *opt = bp_optimizer_name(c->optimizer);
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
    bad |= json_object_set_new(o, "standardize", json_boolean(c->standardize));
    bad |= json_object_set_new(o, "precision", json_string(bp_precision_name(c->precision)));
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
    free(r->labels_json);
    memset(r, 0, sizeof *r);
}

/* 1 when s (n bytes) has a control character (or a comma, when no_comma). */
static int has_control(const char *s, size_t n, int no_comma)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || (no_comma && s[i] == ','))
            return 1;
    return 0;
}

/* "name", "tags", "metadata" of a job request into out->labels_json. 0 ok, -1 with err. */
static int labels_parse(api_job_request *out, const json_t *body, api_error *err)
{
    const json_t *name = json_object_get(body, "name"), *tags = json_object_get(body, "tags");
    const json_t *meta = json_object_get(body, "metadata");
    if (!name && !tags && !meta)
        return 0;
    if (name && (!json_is_string(name) || json_string_length(name) < 1 ||
                 json_string_length(name) > API_JOB_NAME_MAX ||
                 has_control(json_string_value(name), json_string_length(name), 0))) {
        api_fail(err, 400, "name: expected a string of 1..%d bytes without control characters",
                 API_JOB_NAME_MAX);
        return -1;
    }
    if (tags && (!json_is_array(tags) || json_array_size(tags) > API_JOB_TAGS_MAX)) {
        api_fail(err, 400, "tags: expected an array of at most %d strings", API_JOB_TAGS_MAX);
        return -1;
    }
    for (size_t i = 0; tags && i < json_array_size(tags); i++) {
        const json_t *t = json_array_get(tags, i);
        if (!json_is_string(t) || json_string_length(t) < 1 ||
            json_string_length(t) > API_JOB_TAG_MAX ||
            has_control(json_string_value(t), json_string_length(t), 1)) {
            api_fail(err, 400, "tags[%zu]: expected a string of 1..%d bytes without control "
                               "characters or commas", i, API_JOB_TAG_MAX);
            return -1;
        }
    }
    if (meta && !json_is_object(meta)) {
        api_fail(err, 400, "metadata: expected an object");
        return -1;
    }
    json_t *o = json_object();
    if (o && (json_object_set_new(o, "name", name ? json_incref((json_t *)(uintptr_t)name)
                                                  : json_null()) < 0 ||
              json_object_set_new(o, "tags", tags ? json_incref((json_t *)(uintptr_t)tags)
                                                  : json_array()) < 0 ||
              json_object_set_new(o, "metadata", meta ? json_incref((json_t *)(uintptr_t)meta)
                                                      : json_object()) < 0)) {
        json_decref(o);
        o = NULL;
    }
    out->labels_json = o ? api_dump(o, NULL) : NULL;
    json_decref(o);
    if (!out->labels_json) {
        api_fail(err, 503, "out of memory: try again");
        return -1;
    }
    size_t mlen = 0;
    char *m = meta ? api_dump(meta, &mlen) : NULL;
    free(m);
    if (mlen > API_JOB_METADATA_MAX) {
        api_fail(err, 400, "metadata: %zu bytes printed; at most %d", mlen, API_JOB_METADATA_MAX);
        return -1;
    }
    return 0;
}

int api_job_labels_match(const char *labels_json, const char *name, const char *tag)
{
    if (!name && !tag)
        return 1;
    json_t *l = labels_json ? json_loads(labels_json, 0, NULL) : NULL;
    const char *n = json_string_value(json_object_get(l, "name"));
    int ok = !name || (n && strcmp(n, name) == 0);
    const json_t *tags = json_object_get(l, "tags");
    int has = !tag;
    for (size_t i = 0; !has && i < json_array_size(tags); i++)
        has = strcmp(json_string_value(json_array_get(tags, i)) ?: "", tag) == 0;
    json_decref(l);
    return ok && has;
}

int api_job_request_parse(api_job_request *out, const json_t *body, api_error *err)
{
    static const char *const keys[] = {"network", "dataset", "training", "theta", "name",
                                       "tags", "metadata", "from_job", NULL};
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
    const json_t *ds = json_object_get(body, "dataset");
    if (!json_is_string(ds) || strncmp(json_string_value(ds), "ds_", 3) != 0 ||
        strlen(json_string_value(ds)) >= sizeof out->dataset) {
        api_fail(err, 400, "dataset: %s", ds ? "expected a dataset id like \"ds_…\"" : "missing");
        return -1;
    }
    snprintf(out->dataset, sizeof out->dataset, "%s", json_string_value(ds));
    if (api_training_parse(&out->train, json_object_get(body, "training"), "training", err) < 0)
        return -1;
    const json_t *th = json_object_get(body, "theta"), *from = json_object_get(body, "from_job");
    if (from && !json_is_null(from)) {
        const char *f = json_string_value(from);
        if (!f || strncmp(f, "job_", 4) != 0 || strlen(f) >= sizeof out->from_job) {
            api_fail(err, 400, "from_job: expected a job id like \"job_…\"");
            return -1;
        }
        if (th && !json_is_null(th)) {
            api_fail(err, 400, "from_job: give either \"from_job\" or \"theta\", not both");
            return -1;
        }
        snprintf(out->from_job, sizeof out->from_job, "%s", f);
    }
    if (th && !json_is_null(th)) {
        out->theta0 = api_theta_parse(th, &out->spec, "theta", err); /* finite numbers */
        if (!out->theta0)
            return -1;
    }
    return labels_parse(out, body, err);
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
    return api_job_spec_dump_extras(spec, c, NULL);
}

/* new: a JSON array of n doubles; NULL OOM. */
static json_t *reals_json(const double *v, int64_t n)
{
    json_t *a = json_array();
    for (int64_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real(v[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

int api_standardize_set(json_t *o, const double *mean, const double *sd, int64_t n)
{
    if (!mean)
        return 0;
    json_t *mu = reals_json(mean, n), *sg = reals_json(sd, n);
    if (!mu || !sg) {
        json_decref(mu);
        json_decref(sg);
        return -1;
    }
    json_t *st = json_pack("{s:o, s:o}", "mean", mu, "std", sg);
    return st && json_object_set_new(o, "standardize", st) == 0 ? 0 : -1;
}

char *api_job_spec_dump_extras(const bp_spec *spec, const bp_train_config *c,
                               const api_job_extras *x)
{
    json_t *o = spec_object(spec, c);
    char *s = NULL;
    if (!o)
        return NULL;
    json_error_t jerr;
    json_t *names = x && x->classes_json ? json_loads(x->classes_json, 0, &jerr) : NULL;
    if (x && ((names && json_object_set_new(o, "classes", names) < 0) ||
              api_standardize_set(o, x->mean, x->sd, x->n_in) < 0 ||
              (x->from_job[0] && json_object_set_new(o, "from_job", json_string(x->from_job)))))
        goto cleanup;
    s = api_dump(o, NULL);
cleanup:
    json_decref(o);
    return s;
}

void api_job_extras_clear(api_job_extras *x)
{
    if (!x)
        return;
    free(x->mean);
    free(x->sd);
    free(x->classes_json);
    memset(x, 0, sizeof *x);
}

/* new: n doubles from a JSON array of exactly n numbers; NULL otherwise. */
static double *reals_parse(const json_t *a, int64_t n)
{
    if (!json_is_array(a) || (int64_t)json_array_size(a) != n || n < 1)
        return NULL;
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; v && i < n; i++) {
        const json_t *e = json_array_get(a, (size_t)i);
        if (!json_is_number(e)) {
            free(v);
            return NULL;
        }
        v[i] = json_number_value(e);
    }
    return v;
}

int api_job_extras_parse(api_job_extras *out, const char *text, int64_t n_in, api_error *err)
{
    int rc = -1;
    json_error_t jerr;
    memset(out, 0, sizeof *out);
    out->n_in = n_in;
    json_t *o = text ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(o))
        goto bad;
    const json_t *st = json_object_get(o, "standardize"), *from = json_object_get(o, "from_job");
    if (st) {
        out->mean = reals_parse(json_object_get(st, "mean"), n_in);
        out->sd = reals_parse(json_object_get(st, "std"), n_in);
        if (!out->mean || !out->sd)
            goto bad;
    }
    if (json_is_string(from))
        snprintf(out->from_job, sizeof out->from_job, "%s", json_string_value(from));
    const json_t *names = json_object_get(o, "classes");
    if (json_is_array(names) && !(out->classes_json = api_dump(names, NULL)))
        goto bad;
    rc = 0;
    goto cleanup;
bad:
    api_fail(err, 500, "stored job spec: unreadable standardization");
    api_job_extras_clear(out);
cleanup:
    json_decref(o);
    return rc;
}

int api_job_spec_parse(bp_spec *spec, bp_train_config *c, const char *text, api_error *err)
{
    static const char *const keys[] = {"network", "training", "standardize", "from_job",
                                       "classes", NULL};
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
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "epoch", (json_int_t)p->epoch,
                     "epochs", (json_int_t)p->epochs, "cost", api_number_or_null(p->cost),
                     "validation_cost", api_number_or_null(p->validation_cost), "accuracy",
                     api_number_or_null(p->accuracy), "validation_accuracy",
                     api_number_or_null(p->validation_accuracy), "samples_per_second",
                     api_number_or_null(p->samples_per_second));
}

int api_job_outcome_set(json_t *o, int64_t best_epoch, const char *stop_reason)
{
    int bad = json_object_set_new(o, "best_epoch", best_epoch > 0
                                                       ? json_integer((json_int_t)best_epoch)
                                                       : json_null());
    bad |= json_object_set_new(o, "stop_reason", stop_reason && stop_reason[0]
                                                     ? json_string(stop_reason)
                                                     : json_null());
    return bad ? -1 : 0;
}

json_t *api_job_json(const api_job_view *v)
{
    json_t *spec = NULL, *out = NULL, *labels = NULL;
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
    json_t *from = json_object_get(spec, "from_job");
    json_t *metrics = v->metrics_json ? json_loads(v->metrics_json, 0, &jerr) : NULL;
    if (out && metrics && json_object_set_new(out, "metrics", metrics) < 0) {
        json_decref(out);
        out = NULL;
    }
    if (out && (api_job_outcome_set(out, v->best_epoch, v->stop_reason) < 0 ||
                json_object_set_new(out, "from_job", from ? json_copy(from) : json_null()) < 0)) {
        json_decref(out);
        out = NULL;
    }
    labels = v->labels_json ? json_loads(v->labels_json, 0, &jerr) : NULL;
    const char *const keys[] = {"name", "tags", "metadata"};
    for (int k = 0; k < 3 && out; k++) {
        json_t *x = json_object_get(labels, keys[k]);
        json_t *val = x ? json_incref(x) : k == 0 ? json_null() : k == 1 ? json_array() : json_object();
        if (!val || json_object_set_new(out, keys[k], val) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
cleanup:
    json_decref(labels);
    json_decref(spec);
    return out;
}

json_t *api_job_history_json(const api_job_history *h)
{
    static const char *const names[] = {"cost", "validation_cost", "accuracy",
                                        "validation_accuracy"};
    const double *cols[] = {h->cost, h->validation_cost, h->accuracy, h->validation_accuracy};
    enum { NCOLS = sizeof cols / sizeof cols[0] };
    json_t *o = json_object(), *e = json_array();
    int bad = !o || !e || json_object_set(o, "epoch", e) < 0;
    for (size_t i = 0; i < h->n && !bad; i++)
        bad |= json_array_append_new(e, json_integer((json_int_t)h->epoch[i]));
    for (int k = 0; k < NCOLS && !bad; k++) {
        json_t *a = json_array();
        bad = !a || json_object_set_new(o, names[k], a) < 0;
        for (size_t i = 0; i < h->n && !bad; i++)
            bad |= json_array_append_new(a, api_number_or_null(cols[k] ? cols[k][i] : NAN));
    }
    json_decref(e);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *api_job_weights_json(const bp_spec *spec, const double *theta, int64_t epoch,
                             double cost, double validation_cost)
{
    json_t *net = api_spec_json(spec);
    json_t *th = api_theta_json(theta, spec);
    if (!net || !th) {
        json_decref(net);
        json_decref(th);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:I, s:o, s:o}", "network", net, "theta", th, "epoch",
                     (json_int_t)epoch, "cost", api_number_or_null(cost), "validation_cost",
                     api_number_or_null(validation_cost));
}
