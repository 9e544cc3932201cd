/* api.h — backpropd's JSON contract (the project's API.md design, api/openapi.yaml): jansson
 * codecs for network specs, theta/gradients and datasets, request validation, and the
 * problem+json error every 4xx carries. No HTTP and no storage here: the server calls these.
 *
 * Errors go into a caller-provided api_error (thread-safe) whose `detail` names the field and
 * index, e.g. "theta[1]: expected 10 rows of 33 numbers, row 4 has 32". Functions return 0 /
 * a pointer on success and -1 / NULL on failure.
 * Ownership per function: "new" = caller frees; "borrowed" = owned by the argument.
 */
#ifndef BACKPROPD_API_H
#define BACKPROPD_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bp.h"

typedef struct {
    unsigned status;   /* 400, 409, 413, 415, 422... */
    char detail[512];
} api_error;

/* ---- the rules every field is read by (fields.c) ---- */
void api_fail(api_error *err, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "about:blank"-style title for a status ("Bad Request", ...): the one table. */
const char *api_status_title(unsigned status);
/* new: the RFC 9457 object {"type","title","status","detail"}; bytes of detail that are not
 * UTF-8 become '?'. NULL only when out of memory. */
json_t *api_problem_json(unsigned status, const char *detail);
/* 400 '<field>: unknown key "<key>"' with the key escaped and cut (api_escape). key: len
 * bytes, borrowed. */
void api_fail_unknown_key(api_error *err, const char *field, const char *key, size_t len);
/* Refuses the first key of obj not in allowed (NULL-terminated) with api_fail_unknown_key. */
int api_check_keys(const json_t *obj, const char *const *allowed, const char *field,
                   api_error *err);
/* The one integer reader. v: a JSON integer, or a real that is integral with |v| < 2^53
 * (from 2^53 on a real may have been rounded by the parser), within lo..hi. 0 ok (*out set), else -1
 * with 400 "<path>: must be an integer in lo..hi" (path printed from path_fmt). */
int api_int(int64_t *out, const json_t *v, int64_t lo, int64_t hi, api_error *err,
            const char *path_fmt, ...) __attribute__((format(printf, 6, 7)));
/* The same rule for a number the text parsers already read as a double: 0 ok, -1 not. */
int api_int_of_double(double x, int64_t lo, int64_t hi, int64_t *out);
/* new: an array of n elements of size bytes (calloc'd when zero), or NULL when n·size
 * overflows, is more than this machine's physical memory, or malloc fails: every array sized
 * by what a user sent goes through here, so a request "too large to fit in memory" is a 413
 * without an allocation attempt (an ASan build aborts on one past its 1 TiB limit). */
void *api_alloc_array(int64_t n, size_t size, int zero);
/* The one number reader: a finite JSON number in lo..hi, each end closed unless flagged open
 * (hi = INFINITY: no upper bound). 0 ok, else -1 with 400 "<path>: must be a number >= lo",
 * "> lo" or "in [lo, hi)" (", or null" appended with API_OR_NULL, for the caller's null), or
 * "<path>: expected a number" when both ends are infinite. */
enum { API_LO_OPEN = 1, API_HI_OPEN = 2, API_OR_NULL = 4 };
int api_number(double *out, const json_t *v, double lo, double hi, unsigned flags,
               api_error *err, const char *path_fmt, ...) __attribute__((format(printf, 7, 8)));

/* ---- text (text.c) ---- */
/* Length (2..4) of the valid UTF-8 sequence at s (n bytes left); 0 for ASCII or invalid. */
size_t api_utf8_len(const unsigned char *s, size_t n);
/* Writes n bytes of s into out (cap bytes) for a message: '"' and backslash escaped, control
 * characters and DEL as \u00xx, valid UTF-8 as it is, other bytes as '?'. If that does not
 * fit it is cut after a whole character and ends with "…" (U+2026). Always NUL-terminated
 * within cap (cap >= 1); returns the length written. */
size_t api_escape(char *out, size_t cap, const char *s, size_t n);
#define API_QUOTE_MAX 64 /* the buffer messages quote a user's key or field into */
/* The shortest text (%.15g, %.16g or %.17g; subnormals from %.1g) that strtod reads back to
 * the same bits, spelled as jansson spells reals ("1.0", "1e22"). Returns its length, or -1
 * (buf "") for NaN/Inf, which JSON cannot hold. */
#define API_DOUBLE_BUF 32
int api_double_format(char buf[API_DOUBLE_BUF], double x);
/* new (NUL-terminated; its length into *len when len is not NULL): j printed as
 * json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) prints it, objects in insertion order, but reals
 * with api_double_format. NULL when out of memory. The one JSON printer of the server. */
char *api_dump(const json_t *j, size_t *len);

/* ---- parsing (codec.c) ---- */
/* new. Parses a request body: JSON_REJECT_DUPLICATES, nesting depth <= 64, NaN/Infinity and
 * numbers that overflow a double (1e999) refused, trailing garbage refused. */
json_t *api_parse(const char *text, size_t len, api_error *err);

/* ---- network spec: {"layers":[…],"activation":"sigmoid","output":"sigmoid"} ---- */
/* field: the JSON path for messages ("network"). Unknown keys refused. */
int api_spec_parse(bp_spec *out, const json_t *j, const char *field, api_error *err);
json_t *api_spec_json(const bp_spec *spec); /* new */

/* ---- theta / gradients: a list of row-major matrices, bias column first ---- */
/* new: the unrolled Θ (bp_param_count doubles) for spec, checking every shape. */
double *api_theta_parse(const json_t *j, const bp_spec *spec, const char *field, api_error *err);
json_t *api_theta_json(const double *theta, const bp_spec *spec); /* new */

/* ---- predict: {"X": [[…], …]} ---- */
/* new: the rows (1..max_rows, each exactly `width` finite numbers) into *rows × width
 * doubles; NULL with err naming the place ("X[0]: a row must be an array of 4 numbers"). */
double *api_predict_parse(const json_t *body, int64_t width, int64_t max_rows, int64_t *rows,
                          api_error *err);

/* ---- datasets ---- */
typedef struct {
    int64_t rows, features, outputs; /* outputs: max label + 1, or Y's columns */
    double *X;                       /* new: rows × features */
    int32_t *labels;                 /* new: rows (y given), or NULL */
    double *Y;                       /* new: rows × outputs (Y given), or NULL */
    char *classes_json;              /* new: the class names as a JSON array text (class k =
                                      * element k), or NULL: classes are the labels 0..K-1 */
} api_dataset;
void api_dataset_clear(api_dataset *d); /* frees the arrays; *d zeroed */
/* From a parsed object holding "X" and exactly one of "y"/"Y" (other keys are the caller's
 * business). Labels must be integers in 0..65535; rows must agree; at least one row. */
int api_dataset_from_json(api_dataset *out, const json_t *obj, api_error *err);
/* The upload body {"X":[[…]],"y":[…]} (or "Y") parsed straight from text without building a
 * jansson tree (fast path for large uploads; same rules and messages). */
int api_dataset_parse_json_text(api_dataset *out, const char *text, size_t len, api_error *err);
/* CSV: one row a sample, first column the label, '\n' or "\r\n", blank lines skipped. The
 * first row is a header when `header` says so: TRUE always (dropped unread), FALSE never,
 * AUTO only when none of its fields is a number (all numbers: data; a mix: 400 naming the
 * first non-number, so a typo in a first data row is never taken for a header). */
typedef enum { API_CSV_HEADER_AUTO, API_CSV_HEADER_TRUE, API_CSV_HEADER_FALSE } api_csv_header;
int api_dataset_parse_csv_header(api_dataset *out, const char *text, size_t len,
                                 api_csv_header header, api_error *err);
/* The general CSV reader (csv_labels.c): the label in column label_col (0-based; -1 = the
 * last), integers label_base..label_base+65535 (base 0 or 1; base 1 names the classes
 * "1".."K"), or a label column of text only: class names, sorted byte-wise (class k = the
 * k-th distinct name; classes_json set). A column mixing numbers and text is refused at its
 * first text. The header rule is api_dataset_parse_csv_header's over the feature columns. */
int api_dataset_parse_csv_labels(api_dataset *out, const char *text, size_t len,
                                 api_csv_header header, int64_t label_col, int label_base,
                                 api_error *err);
/* An upload {"X": [[…]], "y": ["cat", …]} whose labels are class names (the same order
 * rule). -1 with err, or -1 with err untouched (status 0) when "y" does not start with a
 * string (not this kind of upload). */
int api_dataset_parse_json_names(api_dataset *out, const char *text, size_t len,
                                 api_error *err);
/* The same with API_CSV_HEADER_AUTO. */
int api_dataset_parse_csv(api_dataset *out, const char *text, size_t len, api_error *err);
/* new: dense targets for a network with K outputs: one-hot from labels (each label < K, else
 * 409 naming the row) or Y (outputs == K, else 409). */
double *api_targets(const api_dataset *d, int64_t K, api_error *err);
/* 409 unless features == s_1 and the targets fit s_L. */
int api_dataset_fits(const api_dataset *d, const bp_spec *spec, api_error *err);

/* ---- limits for synchronous math (same limits as jobs) ---- */
#define API_MAX_GRADCHECK_PARAMS 20000

#endif
