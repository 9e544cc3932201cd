/* eval_codec.c — the JSON of evaluation (eval_codec.h): the request's data source and the
 * report of bp_evaluate's figures.
 */
#include "api/eval_codec.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/jobs_codec.h"
#include "api/math_codec.h"

/* "y" of class names (strings) replaced in body by their indexes in classes_json. 0 ok (or
 * nothing to do), -1 with err. */
static int names_to_labels(json_t *body, const char *classes_json, api_error *err)
{
    json_t *y = json_object_get(body, "y");
    if (!classes_json || !json_is_string(json_array_get(y, 0)))
        return 0;
    json_error_t jerr;
    json_t *names = json_loads(classes_json, 0, &jerr), *idx = json_array();
    int rc = -1;
    for (size_t i = 0; names && idx && i < json_array_size(y); i++) {
        const json_t *v = json_array_get(y, i);
        size_t k = 0;
        while (json_is_string(v) && k < json_array_size(names) &&
               !json_equal((json_t *)(uintptr_t)v, json_array_get(names, k)))
            k++;
        if (!json_is_string(v) || k == json_array_size(names)) {
            char q[API_QUOTE_MAX];
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            api_escape(q, sizeof q, s, strlen(s));
            api_fail(err, 400, json_is_string(v) ? "y[%zu]: \"%s\" is not one of the job's "
                                                   "classes"
                                                 : "y[%zu]: expected a class name%s", i,
                     json_is_string(v) ? q : " (a string, as y[0])");
            goto cleanup;
        }
        if (json_array_append_new(idx, json_integer((json_int_t)k)) < 0)
            break;
    }
    if (!names || !idx || json_array_size(idx) != json_array_size(y) ||
        json_object_set(body, "y", idx) < 0) {
        api_fail(err, 503, "out of memory");
        goto cleanup;
    }
    rc = 0;
cleanup:
    json_decref(names);
    json_decref(idx);
    return rc;
}

int api_evaluate_request_parse(char *dataset, size_t cap, api_dataset *data, const char *text,
                               size_t len, const char *classes_json, api_error *err)
{
    static const char *const keys[] = {"dataset", "X", "y", "Y", NULL};
    int rc = -1;
    dataset[0] = '\0';
    json_t *body = api_parse(text, len, err);
    if (!body)
        goto cleanup;
    if (!json_is_object(body)) {
        api_fail(err, 400, "body: expected an object {\"dataset\": \"ds_…\"} or "
                           "{\"X\": [[…]], \"y\": […]}");
        goto cleanup;
    }
    if (api_check_keys(body, keys, "body", err) < 0 ||
        names_to_labels(body, classes_json, err) < 0 ||
        api_data_source_parse(dataset, cap, data, body, err) < 0)
        goto cleanup;
    rc = 0;
cleanup:
    json_decref(body);
    if (rc < 0)
        api_dataset_clear(data);
    return rc;
}

/* {"precision","recall","f1"} from v[3]. */
static json_t *prf_json(const double v[3])
{
    return json_pack("{s:o, s:o, s:o}", "precision", api_number_or_null(v[0]), "recall",
                     api_number_or_null(v[1]), "f1", api_number_or_null(v[2]));
}

json_t *api_class_names_json(const char *classes_json, int64_t K)
{
    json_error_t jerr;
    json_t *given = classes_json ? json_loads(classes_json, 0, &jerr) : NULL;
    json_t *a = json_array();
    for (int64_t k = 0; a && k < K; k++) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)k);
        const json_t *g = json_array_get(given, (size_t)k);
        if (json_array_append_new(a, json_is_string(g) ? json_copy((json_t *)(uintptr_t)g)
                                                       : json_string(num)) < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    json_decref(given);
    return a;
}

int api_predictions_named(json_t *o, const int32_t *labels, int64_t rows, int64_t K,
                          const char *classes_json)
{
    if (!classes_json || !labels)
        return 0;
    json_t *names = api_class_names_json(classes_json, K < 2 ? 2 : K), *pred = json_array();
    int bad = !names || !pred;
    for (int64_t i = 0; i < rows && !bad; i++)
        bad = json_array_append(pred, json_array_get(names, (size_t)labels[i])) < 0;
    bad = bad || json_object_set(o, "classes", names) < 0 ||
          json_object_set(o, "predicted", pred) < 0;
    json_decref(names);
    json_decref(pred);
    return bad ? -1 : 0;
}

/* Appends "classes", "confusion" and "per_class" to o. 0 ok, -1 OOM. */
static int class_tables(json_t *o, const bp_eval *e, const char *classes_json)
{
    int K = e->K;
    json_t *names = api_class_names_json(classes_json, K), *conf = json_array();
    json_t *per = json_array();
    int bad = !names || !conf || !per;
    for (int k = 0; k < K && !bad; k++) {
        const char *name = json_string_value(json_array_get(names, (size_t)k));
        json_t *row = json_array();
        bad |= !row || json_array_append_new(conf, row) < 0;
        for (int j = 0; j < K && !bad; j++)
            bad |= json_array_append_new(row, json_integer(e->confusion[(int64_t)k * K + j]));
        json_t *pc = bad ? NULL
                         : json_pack("{s:s, s:o, s:o, s:o, s:I}", "class", name, "precision",
                                     api_number_or_null(e->precision[k]), "recall",
                                     api_number_or_null(e->recall[k]), "f1",
                                     api_number_or_null(e->f1[k]), "support",
                                     (json_int_t)e->support[k]);
        bad |= !pc || json_array_append_new(per, pc) < 0;
    }
    bad |= json_object_set(o, "classes", names) < 0;
    bad |= json_object_set(o, "confusion", conf) < 0;
    bad |= json_object_set(o, "per_class", per) < 0;
    json_decref(names);
    json_decref(conf);
    json_decref(per);
    return bad ? -1 : 0;
}

json_t *api_evaluation_json(const bp_eval *e, const char *classes_json)
{
    json_t *o = json_pack("{s:I, s:o}", "rows", (json_int_t)e->m, "cost",
                          api_number_or_null(e->cost));
    if (!o)
        return NULL;
    int bad = 0;
    if (e->K == 0) {
        bad |= json_object_set_new(o, "mse", api_number_or_null(e->mse));
        bad |= json_object_set_new(o, "mae", api_number_or_null(e->mae));
        bad |= json_object_set_new(o, "r2", api_number_or_null(e->r2));
    } else {
        bad |= json_object_set_new(o, "accuracy", api_number_or_null(e->accuracy));
        bad |= json_object_set_new(o, "log_loss", api_number_or_null(e->log_loss));
        bad |= class_tables(o, e, classes_json);
        bad |= json_object_set_new(o, "macro", prf_json(e->macro));
        bad |= json_object_set_new(o, "weighted", prf_json(e->weighted));
        if (e->K == 2)
            bad |= json_object_set_new(o, "roc_auc", api_number_or_null(e->roc_auc));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
