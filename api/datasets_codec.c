/* datasets_codec.c — the JSON of a stored dataset's metadata (datasets_codec.h).
 */
#include "api/datasets_codec.h"

json_t *api_dataset_meta_json(const api_dataset_meta_view *m)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "id", m->id, "name", m->name, "rows",
                     (json_int_t)m->rows, "features", (json_int_t)m->features, "outputs",
                     (json_int_t)m->outputs, "created_at", m->created_at);
    json_error_t jerr;
    json_t *names = o && m->classes_json ? json_loads(m->classes_json, 0, &jerr) : NULL;
    if (names && json_object_set_new(o, "classes", names) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
