/* eval_codec.c — the JSON of evaluation (eval_codec.h): the request's data source and the
 * report of bp_evaluate's figures.
 */
#include "api/eval_codec.h"

#include <stdio.h>

#include "api/jobs_codec.h"
#include "api/math_codec.h"

int api_evaluate_request_parse(char *dataset, size_t cap, api_dataset *data, const char *text,
                               size_t len, api_error *err)
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

/* Appends "classes", "confusion" and "per_class" to o. 0 ok, -1 OOM. */
static int class_tables(json_t *o, const bp_eval *e, const char *const *classes)
{
    int K = e->K;
    json_t *names = json_array(), *conf = json_array(), *per = json_array();
    int bad = !names || !conf || !per;
    for (int k = 0; k < K && !bad; k++) {
        char num[16];
        snprintf(num, sizeof num, "%d", k);
        const char *name = classes ? classes[k] : num;
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
        bad |= json_array_append_new(names, json_string(name)) < 0;
    }
    bad |= json_object_set(o, "classes", names) < 0;
    bad |= json_object_set(o, "confusion", conf) < 0;
    bad |= json_object_set(o, "per_class", per) < 0;
    json_decref(names);
    json_decref(conf);
    json_decref(per);
    return bad ? -1 : 0;
}

json_t *api_evaluation_json(const bp_eval *e, const char *const *classes)
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
        bad |= class_tables(o, e, classes);
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
