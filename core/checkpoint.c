/* checkpoint.c — the trainer's checkpoint image (bp.h: bp_trainer_checkpoint_*): a
 * self-describing, checksummed byte image of everything a trainer needs to resume bit-exactly
 * between epochs, checked field by field against the trainer that loads it.
 */
#include "core/train_int.h"

#include <math.h>
#include <string.h>

#define CKPT_MAGIC "BPCK"
#define CKPT_VERSION 3u  /* 3 added the precision to the header */
#define CKPT_VERSION_2 2u /* 2 added correct, init_cost, best_epoch, best_train_cost, stop */
#define CKPT_VERSION_1 1u /* still loaded: see read_state */

/* Image (all integers little-endian u64, doubles as their IEEE bits in a u64):
 *   "BPCK", version, total size in bytes
 *   header: param count, spec (n_layers, sizes[], hidden, output), config (every field),
 *           data sizes (m, n_in, n_out, m_train, m_val); version 3: precision (0 float64,
 *           1 float32; images before version 3 are float64)
 *   state:  epoch, finished, have_grad, cost, adam_t, lb_pos, lb_count, best_cost, since_best,
 *           rng s[4]; version 2 adds correct, init_cost, best_epoch, best_train_cost, stop
 *   arrays: theta[P]; grad[P] if have_grad; vel[P] (momentum, adam); sq[P] (adam);
 *           lbfgs rho[count], s[count·P], y[count·P]; best_theta[P] if early stopping
 *   u64 FNV-1a of everything before it. */

typedef struct {
    unsigned char *p;
    const unsigned char *r;
    size_t pos, size;
    int bad;
} ckbuf;

static void put_u64(ckbuf *b, uint64_t v)
{
    if (b->p) {
        for (int i = 0; i < 8; i++)
            b->p[b->pos + (size_t)i] = (unsigned char)(v >> (8 * i));
    }
    b->pos += 8;
}

static void put_f64(ckbuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u);
}

static void put_i64(ckbuf *b, int64_t v)
{
    put_u64(b, (uint64_t)v);
}

static void put_array(ckbuf *b, const double *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        put_f64(b, v[i]);
}

static uint64_t get_u64(ckbuf *b)
{
    if (b->bad || b->size - b->pos < 8) {
        b->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b->r[b->pos + (size_t)i] << (8 * i);
    b->pos += 8;
    return v;
}

static double get_f64(ckbuf *b)
{
    uint64_t u = get_u64(b);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static int64_t get_i64(ckbuf *b)
{
    return (int64_t)get_u64(b);
}

static void get_array(ckbuf *b, double *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = get_f64(b);
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The header fields that must match between an image and the trainer loading it, in order. */
#define HDR_MAX (8 + BP_MAX_LAYERS + 32)
static int header_fields(const bp_trainer *t, uint64_t *h, int with_precision)
{
    int n = 0;
    const bp_train_config *c = &t->cfg;
    uint64_t u;
    h[n++] = (uint64_t)t->P;
    h[n++] = (uint64_t)t->spec.n_layers;
    for (int l = 0; l < BP_MAX_LAYERS; l++)
        h[n++] = l < t->spec.n_layers ? (uint64_t)t->spec.sizes[l] : 0;
    h[n++] = (uint64_t)t->spec.hidden;
    h[n++] = (uint64_t)t->spec.output;
    h[n++] = (uint64_t)c->optimizer;
#define F(x) (memcpy(&u, &(x), 8), u)
    h[n++] = F(c->learning_rate);
    h[n++] = F(c->lambda);
    h[n++] = (uint64_t)c->epochs;
    h[n++] = (uint64_t)c->batch_size;
    h[n++] = c->seed;
    h[n++] = F(c->validation_split);
    h[n++] = (uint64_t)c->early_stopping_patience;
    h[n++] = F(c->init_epsilon);
    h[n++] = F(c->momentum);
    h[n++] = F(c->beta1);
    h[n++] = F(c->beta2);
    h[n++] = F(c->adam_eps);
    h[n++] = (uint64_t)c->lbfgs_memory;
#undef F
    h[n++] = (uint64_t)t->m_all;
    h[n++] = (uint64_t)t->n_in;
    h[n++] = (uint64_t)t->n_out;
    h[n++] = (uint64_t)t->m_train;
    h[n++] = (uint64_t)t->m_val;
    if (with_precision)
        h[n++] = (uint64_t)t->cfg.precision;
    return n;
}

/* What each header field is, for the error message of a mismatched image. */
static const char *header_field_name(int i)
{
    static const char *tail[] = {"hidden activation", "output", "optimizer", "learning_rate",
                                 "lambda", "epochs", "batch_size", "seed", "validation_split",
                                 "early_stopping_patience", "init_epsilon", "momentum", "beta1",
                                 "beta2", "adam_eps", "lbfgs_memory", "dataset rows",
                                 "dataset features", "dataset outputs", "training rows",
                                 "validation rows", "precision"};
    if (i == 0)
        return "parameter count";
    if (i <= 1 + BP_MAX_LAYERS)
        return "layers";
    return tail[i - 2 - BP_MAX_LAYERS];
}

/* Writes (b->p != NULL) or measures (b->p == NULL) the image body after the magic. */
static void ckpt_write(const bp_trainer *t, ckbuf *b, size_t total)
{
    uint64_t h[HDR_MAX];
    int nh = header_fields(t, h, 1);
    int64_t P = t->P;
    put_u64(b, (uint64_t)CKPT_VERSION);
    put_u64(b, (uint64_t)total);
    put_u64(b, (uint64_t)nh);
    for (int i = 0; i < nh; i++)
        put_u64(b, h[i]);
    put_i64(b, t->epoch);
    put_i64(b, t->finished);
    put_i64(b, t->have_grad);
    put_f64(b, t->cost);
    put_i64(b, t->adam_t);
    put_i64(b, t->lb_pos);
    put_i64(b, t->lb_count);
    put_f64(b, t->best_cost);
    put_i64(b, t->since_best);
    for (int i = 0; i < 4; i++)
        put_u64(b, t->rng.s[i]);
    put_i64(b, t->correct);
    put_f64(b, t->init_cost);
    put_i64(b, t->best_epoch);
    put_f64(b, t->best_train_cost);
    put_i64(b, t->stop);
    put_array(b, t->theta, P);
    if (t->have_grad)
        put_array(b, t->grad, P);
    if (t->vel)
        put_array(b, t->vel, P);
    if (t->sq)
        put_array(b, t->sq, P);
    if (t->lb_s) {
        put_array(b, t->lb_rho, t->lb_count);
        put_array(b, t->lb_s, t->lb_count * P);
        put_array(b, t->lb_y, t->lb_count * P);
    }
    if (t->best_theta)
        put_array(b, t->best_theta, P);
}

size_t bp_trainer_checkpoint_size(const bp_trainer *t)
{
    ckbuf b = {0};
    ckpt_write(t, &b, 0);
    return 4 + b.pos + 8; /* magic, body, checksum */
}

int bp_trainer_checkpoint_save(const bp_trainer *t, void *buf, size_t size, bp_error *err)
{
    if (t->dirty) {
        core_set_error(err, "checkpoint: the trainer stopped mid-epoch (cancelled or failed)");
        return -1;
    }
    size_t need = bp_trainer_checkpoint_size(t);
    if (!buf || size < need) {
        core_set_error(err, "checkpoint: buffer of %zu bytes is smaller than the %zu needed", size,
                    need);
        return -1;
    }
    unsigned char *p = buf;
    memcpy(p, CKPT_MAGIC, 4);
    ckbuf b = {.p = p + 4, .size = need - 12};
    ckpt_write(t, &b, need);
    ckbuf tail = {.p = p + need - 8};
    put_u64(&tail, fnv1a(p, need - 8));
    return 0;
}

/* The state scalars of an image, read and checked before anything in the trainer changes. */
typedef struct {
    int64_t epoch, finished, have_grad, adam_t, lb_pos, lb_count, since_best;
    int64_t correct, best_epoch, stop;
    int64_t image_have_grad;  /* the image holds grad[P] */
    double cost, best_cost, init_cost, best_train_cost;
    bp_rng rng;
} ckpt_state;

/* Reads the state scalars of a version-`version` image. A version-1 image lacks the five
 * fields version 2 added: they get the values that keep resuming right. The training rows
 * right and J(Θ₀) are re-measured by the next epoch (the count at its end; the divergence
 * reference at its start, from the resumed weights), and the weights held count as the last
 * epoch's (with early stopping: the best epoch is unknown, so the resumed run's own best). */
static void read_state(ckbuf *b, uint64_t version, ckpt_state *s)
{
    s->epoch = get_i64(b);
    s->finished = get_i64(b);
    s->have_grad = s->image_have_grad = get_i64(b);
    s->cost = get_f64(b);
    s->adam_t = get_i64(b);
    s->lb_pos = get_i64(b);
    s->lb_count = get_i64(b);
    s->best_cost = get_f64(b);
    s->since_best = get_i64(b);
    for (int i = 0; i < 4; i++)
        s->rng.s[i] = get_u64(b);
    if (version == CKPT_VERSION_1) {
        s->correct = -1;
        s->init_cost = NAN;
        s->best_epoch = s->epoch;
        s->best_train_cost = s->cost;
        s->stop = s->finished ? BP_STOP_COMPLETED : BP_STOP_NONE;
        s->have_grad = 0; /* re-evaluated (with the count) at the next epoch's start */
        return;
    }
    s->correct = get_i64(b);
    s->init_cost = get_f64(b);
    s->best_epoch = get_i64(b);
    s->best_train_cost = get_f64(b);
    s->stop = get_i64(b);
}

/* NULL if s is a state this trainer can be in, with `rest` bytes of arrays left to read;
 * else the name of the first field that is not. Field by field, in wide enough integers:
 * a counter the trainer increments (adam_t per step, since_best per epoch) is bounded by
 * what the epochs done can have made, so no image can overflow it later. */
static const char *state_check(const bp_trainer *t, const ckpt_state *s, size_t rest)
{
    int64_t P = t->P, M = t->cfg.lbfgs_memory;
    int64_t steps = t->full_batch || t->batch <= 0 ? 1 : (t->m_train + t->batch - 1) / t->batch;
    if (s->epoch < 0 || s->epoch > t->cfg.epochs)
        return "epoch";
    if (s->finished != 0 && s->finished != 1)
        return "finished";
    if (s->image_have_grad != 0 && s->image_have_grad != 1)
        return "have_grad";
    /* epochs ≤ BP_MAX_EPOCHS (10^6) and steps per epoch ≤ m_train (rows in memory): fits */
    if (s->adam_t < 0 || s->adam_t > (s->epoch + 1) * steps)
        return "adam_t";
    if (s->since_best < 0 || s->since_best > s->epoch)
        return "since_best";
    if (t->lb_s ? s->lb_pos < 0 || s->lb_pos >= M || s->lb_count < 0 || s->lb_count > M
                : s->lb_pos != 0 || s->lb_count != 0)
        return "lb_pos/lb_count";
    if (s->best_epoch < 0 || s->best_epoch > s->epoch)
        return "best_epoch";
    if (s->stop < BP_STOP_NONE || s->stop > BP_STOP_DIVERGED)
        return "stop";
    if (s->correct < -1 || s->correct > t->m_train)
        return "correct";
    /* The arrays must fill exactly what is left. */
    int64_t arrays = P + (s->image_have_grad ? P : 0) + (t->vel ? P : 0) + (t->sq ? P : 0) +
                     (t->lb_s ? s->lb_count * (2 * P + 1) : 0) + (t->best_theta ? P : 0);
    if ((uint64_t)arrays != rest / 8 || rest % 8 != 0)
        return "the arrays' length";
    return NULL;
}

int bp_trainer_checkpoint_load(bp_trainer *t, const void *buf, size_t size, bp_error *err)
{
    const unsigned char *p = buf;
    if (!buf || size < 4 + 8 * 3 + 8 || memcmp(p, CKPT_MAGIC, 4) != 0) {
        core_set_error(err, "checkpoint: not a backpropd checkpoint");
        return -1;
    }
    ckbuf b = {.r = p + 4, .size = size - 12};
    uint64_t version = get_u64(&b);
    if (version != CKPT_VERSION && version != CKPT_VERSION_2 && version != CKPT_VERSION_1) {
        core_set_error(err, "checkpoint: version %llu is not supported (expected %u to %u)",
                    (unsigned long long)version, CKPT_VERSION_1, CKPT_VERSION);
        return -1;
    }
    uint64_t total = get_u64(&b);
    if (total != size) {
        core_set_error(err, "checkpoint: image is %zu bytes but says %llu (truncated?)", size,
                    (unsigned long long)total);
        return -1;
    }
    ckbuf tail = {.r = p + size - 8, .size = 8};
    if (get_u64(&tail) != fnv1a(p, size - 8)) {
        core_set_error(err, "checkpoint: checksum mismatch (corrupted image)");
        return -1;
    }
    uint64_t h[HDR_MAX];
    int nh = header_fields(t, h, version == CKPT_VERSION);
    if (version != CKPT_VERSION && t->cfg.precision != BP_FLOAT64) {
        core_set_error(err, "checkpoint: made for a different precision than this trainer's "
                       "(version %llu images are float64)", (unsigned long long)version);
        return -1;
    }
    if (get_u64(&b) != (uint64_t)nh) {
        core_set_error(err, "checkpoint: header layout differs from this build");
        return -1;
    }
    for (int i = 0; i < nh; i++) {
        if (get_u64(&b) != h[i]) {
            core_set_error(err, "checkpoint: made for a different %s than this trainer's",
                        header_field_name(i));
            return -1;
        }
    }
    /* Scalars first, checked, before anything in t changes. */
    ckpt_state s;
    read_state(&b, version, &s);
    const char *bad = b.bad ? "the state's length" : state_check(t, &s, b.size - b.pos);
    if (bad) {
        core_set_error(err, "checkpoint: inconsistent training state (%s)", bad);
        return -1;
    }
    int64_t P = t->P;
    t->epoch = s.epoch;
    t->finished = (int)s.finished;
    t->have_grad = (int)s.have_grad;
    t->cost = s.cost;
    t->adam_t = s.adam_t;
    t->lb_pos = s.lb_pos;
    t->lb_count = s.lb_count;
    t->best_cost = s.best_cost;
    t->since_best = s.since_best;
    t->rng = s.rng;
    t->correct = s.correct < 0 ? 0 : s.correct;
    t->init_cost = s.init_cost;
    t->best_epoch = s.best_epoch;
    t->best_train_cost = s.best_train_cost;
    t->stop = (int)s.stop;
    get_array(&b, t->theta, P);
    if (s.image_have_grad)
        get_array(&b, t->grad, P);
    if (t->vel)
        get_array(&b, t->vel, P);
    if (t->sq)
        get_array(&b, t->sq, P);
    if (t->lb_s) {
        get_array(&b, t->lb_rho, s.lb_count);
        get_array(&b, t->lb_s, s.lb_count * P);
        get_array(&b, t->lb_y, s.lb_count * P);
    }
    if (t->best_theta)
        get_array(&b, t->best_theta, P);
    t->dirty = 0;
    return 0;
}
