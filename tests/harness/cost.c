/* cost.c — a job's whole cost history over HTTP (harness.h): GET /v1/jobs/{id}/cost a page at
 * a time, following "next" until it is null, each page checked on the way (200, the five
 * arrays of one length, no longer than the limit and full when another page follows, epochs
 * increasing past the cursor, "next" and the Link header naming the page after the last
 * epoch), and the pages joined into one history.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

#define COST_DEFAULT_LIMIT 1000
#define COST_MAX_PAGES 100000

static const char *const cost_cols[] = {"epoch", "cost", "validation_cost", "accuracy",
                                        "validation_accuracy"};
enum { COST_NCOLS = sizeof cost_cols / sizeof cost_cols[0] };

/* Checks one page (after the cursor `after`, of at most `limit` rows) and appends its columns
 * to all; returns its "next" (borrowed from page) or NULL. */
static const char *cost_page_join(json_t *all, json_t *page, const resp *r, const char *id,
                                  long long after, long long limit)
{
    json_t *epoch = json_object_get(page, "epoch");
    size_t n = json_array_size(epoch);
    for (int k = 0; k < COST_NCOLS; k++) {
        json_t *col = json_object_get(page, cost_cols[k]);
        cr_assert(json_is_array(col), "%s: no array %s", id, cost_cols[k]);
        cr_assert_eq(json_array_size(col), n, "%s: %s has %zu entries, epoch %zu", id,
                     cost_cols[k], json_array_size(col), n);
        cr_assert_eq(json_array_extend(json_object_get(all, cost_cols[k]), col), 0);
    }
    cr_assert_leq(n, (size_t)limit, "%s: a page of %zu rows, limit %lld", id, n, limit);
    long long prev = after;
    for (size_t i = 0; i < n; i++) {
        long long e = (long long)json_integer_value(json_array_get(epoch, i));
        cr_assert_gt(e, prev, "%s: epoch %lld after %lld", id, e, prev);
        prev = e;
    }
    json_t *next = json_object_get(page, "next");
    cr_assert(next && (json_is_null(next) || json_is_string(next)), "%s: no next", id);
    char link[256] = "";
    int has_link = resp_header(r, "Link", link, sizeof link) == 0;
    if (json_is_null(next)) {
        cr_assert(!has_link, "%s: a Link header (%s) on the last page", id, link);
        return NULL;
    }
    cr_assert_eq(n, (size_t)limit, "%s: a page of %zu rows (limit %lld) with a next", id, n,
                 limit);
    char want[192], want_link[256];
    snprintf(want, sizeof want, "/v1/jobs/%s/cost?after=%lld&limit=%lld", id, prev, limit);
    cr_assert_str_eq(json_string_value(next), want);
    snprintf(want_link, sizeof want_link, "<%s>; rel=\"next\"", want);
    cr_assert(has_link, "%s: next %s without a Link header", id, want);
    cr_assert_str_eq(link, want_link);
    return json_string_value(next);
}

json_t *get_cost_history_h(const srv *s, const char *const *headers, const char *id, int limit,
                           int *pages)
{
    json_t *all = json_object();
    cr_assert(all);
    for (int k = 0; k < COST_NCOLS; k++)
        cr_assert_eq(json_object_set_new(all, cost_cols[k], json_array()), 0);
    char path[256];
    if (limit > 0)
        snprintf(path, sizeof path, "/v1/jobs/%s/cost?limit=%d", id, limit);
    else
        snprintf(path, sizeof path, "/v1/jobs/%s/cost", id);
    long long after = 0, lim = limit > 0 ? limit : COST_DEFAULT_LIMIT;
    int n_pages = 0;
    for (;;) {
        cr_assert_lt(n_pages, COST_MAX_PAGES, "%s: no end to the pages", id);
        resp r;
        cr_assert_eq(http_req(s, "GET", path, NULL, NULL, 0, headers, &r), 0);
        cr_assert_eq(r.status, 200, "GET %s: %ld %s", path, r.status, r.body);
        json_t *page = resp_json(&r);
        cr_assert(page, "GET %s: not JSON", path);
        n_pages++;
        const char *next = cost_page_join(all, page, &r, id, after, lim);
        if (next) {
            snprintf(path, sizeof path, "%s", next);
            json_t *ep = json_object_get(page, "epoch");
            after = (long long)json_integer_value(json_array_get(ep, json_array_size(ep) - 1));
        }
        json_decref(page);
        resp_free(&r);
        if (!next)
            break;
    }
    if (pages)
        *pages = n_pages;
    return all;
}

char *get_cost_text(const srv *s, const char *id)
{
    json_t *all = get_cost_history_h(s, NULL, id, 0, NULL);
    char *text = json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    cr_assert(text);
    json_decref(all);
    return text;
}
