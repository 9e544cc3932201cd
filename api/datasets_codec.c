/* datasets_codec.c — the JSON of a stored dataset's metadata (datasets_codec.h).
 */
#include "api/datasets_codec.h"

json_t *api_dataset_meta_json(const api_dataset_meta_view *m)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "id", m->id, "name", m->name, "rows",
                     (json_int_t)m->rows, "features", (json_int_t)m->features, "outputs",
                     (json_int_t)m->outputs, "created_at", m->created_at);
}
