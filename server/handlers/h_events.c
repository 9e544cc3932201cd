/* h_events.c — the Server-Sent Events of GET /v1/jobs/{id}/events (h_events.h): the list of
 * open streams, suspend/resume of their connections, heartbeats, the event id scheme, and the
 * replay from the store.
 *
 * DESIGN. Each GET /events holds a `stream` in `ev->streams`. libmicrohttpd pulls bytes
 * through stream_read() on an HTTP thread. When nothing is ready, the reader suspends its
 * connection (MHD_suspend_connection from the content reader, the pattern microhttpd.h
 * prescribes for "no data yet") and returns 0: no HTTP thread blocks or spins. The job
 * runtime's change listener (on_job_change, called after a job registers here, publishes an
 * epoch or leaves, without any jobs lock held) resumes that job's streams; the events ticker
 * resumes each suspended stream once a second when its 15 s heartbeat is due or when it
 * follows a job not running here (queued, or running elsewhere: it polls the store). Between
 * ticks it poll()s the suspended streams' sockets for a hang-up (MHD does not watch a
 * suspended connection; a reader that suspends wakes the ticker to add it): a client that went away has its stream ended and its connection slot
 * freed within a second, not at the next heartbeat. Streams are matched by serial number after
 * the poll, so a socket number reused meanwhile never ends another stream. Only the
 * reader suspends and only holders of `ev->mu` resume, each under `ev->mu` with the stream's
 * `suspended` flag, so a connection is never resumed twice or after it was freed. A reader
 * clears `dirty` BEFORE it reads the job's state and suspends only if nothing set it again,
 * so a change published meanwhile is never missed. jobs_stop() calls the listener for every
 * job once `stopping` is set, so every suspended stream is resumed and its reader ends it:
 * MHD_stop_daemon must see no suspended connection.
 */
#include "server/handlers/h_events.h"
#include "server/handlers/handlers_util.h"
#include "server/handlers/routes.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/jobs_codec.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/jobs/jobs_live.h"
#include "server/security/security.h"
#include "server/server.h"
#include "server/store/store.h"

#define HEARTBEAT_SECONDS 15.0
#define RETRY_MS 3000           /* the stream's retry: field: EventSource reconnects after it */
#define STREAM_MAX_EVENTS 256   /* events formatted per reader refill */

typedef struct stream stream;

/* One SSE connection. Fields marked (reader) belong to the HTTP thread running stream_read;
 * the rest are under ev->mu. */
struct stream {
    stream *next;
    events *ev;
    struct MHD_Connection *conn;
    int fd;                    /* the connection's socket (watched for a hang-up), or -1 */
    uint64_t serial;           /* unique per stream: what the ticker matches after a poll */
    int gone;                  /* the client hung up: the reader ends the stream */
    char id[40];
    char owner[64];
    int suspended;             /* the reader suspended the connection; only a resume clears it */
    int dirty;                 /* something was published since the reader last looked */
    int poll_store;            /* the job does not run here: poll the store once a second */
    double last_write;         /* monotonic seconds of the last bytes handed out */
    int64_t last_id;           /* (reader) last event id formatted */
    int done;                  /* (reader) final status formatted: end after the buffer */
    char *buf;                 /* (reader) pending bytes */
    size_t len, off, cap;
};

struct events {
    jobs *j;                   /* borrowed */
    store *st;                 /* borrowed */
    pthread_mutex_t mu;
    int wake_fd;               /* eventfd: interrupts the ticker's poll (a stream suspended,
                                * or shutdown) */
    stream *streams;
    uint64_t next_serial;
    int stop;                  /* the ticker ends */
    pthread_t ticker;
    int ticker_started;
};

/* ------------------------------------------------------------------ formatting */

/* Appends formatted bytes to the reader's buffer. 0 ok, -1 out of memory. */
static int sbuf_printf(stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sbuf_printf(stream *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (s->len + (size_t)n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + (size_t)n + 1)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return -1;
        s->buf = b;
        s->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
    return 0;
}

/* Formats one event (steals data). 0 ok, -1 out of memory. */
static int emit(stream *s, int64_t id, const char *event, json_t *data)
{
    char *text = data ? api_dump(data, NULL) : NULL;
    json_decref(data);
    if (!text)
        return -1;
    int rc = sbuf_printf(s, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)id, event, text);
    free(text);
    if (rc == 0)
        s->last_id = id;
    return rc;
}

static json_t *status_event(const char *status, int64_t at_ms, int64_t epoch, const char *error)
{
    return json_pack("{s:s, s:o, s:I, s:o}", "status", status, "at", api_time_json(at_ms),
                     "epoch", (json_int_t)epoch, "error",
                     error && *error ? json_string(error) : json_null());
}

/* The final status event: status_event plus what the job's resource says of its end. */
static json_t *final_event(const store_job *job, int64_t epoch)
{
    json_t *o = status_event(job_status_name(job->status), job->finished_at, epoch, job->error);
    if (o && api_job_outcome_set(o, job->progress.best_epoch, job->progress.stop_reason) < 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* One epoch's progress event from a row of the history (samples_per_second NaN: not kept). */
static json_t *progress_event(const store_progress *r)
{
    api_job_progress p = handlers_progress_view(r);
    return api_job_progress_json(&p);
}

/* Events of a job running here, after s->last_id. *here = 0 when it does not run here. */
static int fill_live(stream *s, jobs *j, int *here)
{
    int64_t created_at = 0, started_at = 0;
    store_progress *rows = NULL;
    size_t n = 0;
    int rc = 0;
    int64_t after = s->last_id > 2 ? s->last_id - 2 : 0;
    int r = jobs_live_epochs(j, s->id, after, STREAM_MAX_EVENTS, &created_at, &started_at, &rows,
                             &n);
    *here = r != 0;
    if (r <= 0) {
        rc = r;
        goto cleanup;
    }
    rc = -1;
    if (s->last_id < 1 && emit(s, 1, "status", status_event("queued", created_at, 0, NULL)) < 0)
        goto cleanup;
    if (s->last_id < 2 && emit(s, 2, "status", status_event("running", started_at, 0, NULL)) < 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        const store_progress *p = &rows[i];
        if (emit(s, 2 + p->epoch, "progress", progress_event(p)) < 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    free(rows);
    return rc;
}


/* Events of a job that does not run here, from the store. */
static int fill_store(stream *s, store *st)
{
    store_job job;
    memset(&job, 0, sizeof job);
    store_error se = {0};
    int64_t *h_epoch = NULL;
    double *h_cost = NULL, *h_vcost = NULL, *h_acc = NULL, *h_vacc = NULL;
    size_t h_n = 0;
    int rc = 0;
    int r = store_job_get(st, s->owner, s->id, &job, &se);
    if (r == STORE_NOT_FOUND) {
        s->done = 1; /* deleted */
        goto cleanup;
    }
    if (r < 0)
        goto cleanup; /* try again at the next poll */
    int final = job.status == JOB_SUCCEEDED || job.status == JOB_FAILED ||
                job.status == JOB_CANCELLED;
    if (s->last_id < 1 && emit(s, 1, "status", status_event("queued", job.created_at, 0, NULL)) < 0)
        goto oom;
    if (job.started_at > 0 && s->last_id < 2 &&
        emit(s, 2, "status", status_event("running", job.started_at, 0, NULL)) < 0)
        goto oom;
    int64_t last_epoch = s->last_id >= 2 ? s->last_id - 2 : 0;
    int64_t E = job.progress.epoch;
    if (job.progress.epoch > last_epoch || final) {
        if (store_job_history(st, s->owner, s->id, &h_epoch, &h_cost, &h_vcost, &h_acc, &h_vacc,
                              &h_n, &se) < 0)
            goto cleanup;
        for (size_t i = 0; i < h_n; i++) {
            if (h_epoch[i] <= last_epoch)
                continue;
            store_progress row = {.epoch = h_epoch[i], .epochs = job.progress.epochs,
                                  .cost = h_cost[i], .validation_cost = h_vcost[i],
                                  .accuracy = h_acc[i], .validation_accuracy = h_vacc[i],
                                  .samples_per_second = NAN};
            if (emit(s, 2 + h_epoch[i], "progress", progress_event(&row)) < 0)
                goto oom;
            last_epoch = h_epoch[i];
        }
        if (h_n > 0 && h_epoch[h_n - 1] > E)
            E = h_epoch[h_n - 1];
    }
    if (final) {
        if (3 + E > s->last_id && emit(s, 3 + E, "status", final_event(&job, E)) < 0)
            goto oom;
        s->done = 1;
    }
    goto cleanup;
oom:
    rc = -1;
cleanup:
    store_job_clear(&job);
    free(h_epoch);
    free(h_cost);
    free(h_vcost);
    free(h_acc);
    free(h_vacc);
    return rc;
}

/* ------------------------------------------------------------------ the stream */

/* MHD content reader: hands out pending bytes; refills from the live entry or the store; when
 * there is nothing, suspends the connection and returns 0 (resumed by a change, the ticker or
 * shutdown). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *s = cls;
    events *ev = s->ev;
    (void)pos;
    while (s->off == s->len) {
        s->off = s->len = 0;
        if (s->done || jobs_stopping(ev->j))
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&ev->mu);
        s->dirty = 0;
        int gone = s->gone;
        pthread_mutex_unlock(&ev->mu);
        if (gone)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        int here = 0;
        int rc = fill_live(s, ev->j, &here);
        pthread_mutex_lock(&ev->mu);
        s->poll_store = !here;
        pthread_mutex_unlock(&ev->mu);
        if (!here)
            rc = fill_store(s, ev->st);
        if (rc < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (s->len > 0)
            break;
        if (s->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        double now = clock_monotonic();
        pthread_mutex_lock(&ev->mu);
        if (now - s->last_write >= HEARTBEAT_SECONDS) {
            pthread_mutex_unlock(&ev->mu);
            if (sbuf_printf(s, ": heartbeat\n\n") < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (!s->dirty && !jobs_stopping(ev->j)) {
            s->suspended = 1;
            MHD_suspend_connection(s->conn);
            pthread_mutex_unlock(&ev->mu);
            uint64_t one = 1; /* the ticker watches this socket from now on (a full
                               * counter fails: the ticker is awake then anyway) */
            ssize_t woke = write(ev->wake_fd, &one, sizeof one);
            (void)woke;
            return 0;
        }
        pthread_mutex_unlock(&ev->mu);
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    pthread_mutex_lock(&ev->mu);
    s->last_write = clock_monotonic();
    pthread_mutex_unlock(&ev->mu);
    return (ssize_t)n;
}

/* MHD frees the response: the connection is gone (finished, client vanished, or shutdown). */
static void stream_free(void *cls)
{
    stream *s = cls;
    if (!s)
        return;
    events *ev = s->ev;
    pthread_mutex_lock(&ev->mu);
    for (stream **pp = &ev->streams; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&ev->mu);
    free(s->buf);
    free(s);
}

handler_result events_reply(events *ev, req *r, const char *id, const char *owner,
                            int64_t last_event_id)
{
    stream *s = calloc(1, sizeof *s);
    if (!s)
        return http_reply_problem(r, 503, "out of memory for an event stream; retry later");
    s->ev = ev;
    s->conn = r->conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = ci ? ci->connect_fd : -1;
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    s->last_id = last_event_id > 0 ? last_event_id : 0;
    s->last_write = clock_monotonic();
    if (sbuf_printf(s, "retry: %d\n\n", RETRY_MS) < 0) {
        free(s);
        return http_reply_problem(r, 503, "out of memory for an event stream; retry later");
    }
    pthread_mutex_lock(&ev->mu);
    if (jobs_stopping(ev->j)) {
        pthread_mutex_unlock(&ev->mu);
        free(s->buf);
        free(s);
        http_add_header(r, "Retry-After", "5");
        return http_reply_problem(r, 503, "shutting down: reconnect to follow the job");
    }
    s->serial = ++ev->next_serial;
    s->next = ev->streams;
    ev->streams = s;
    pthread_mutex_unlock(&ev->mu);
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "X-Accel-Buffering", "no");
    return http_reply_stream(r, 200, "text/event-stream", stream_read, s, stream_free);
}

/* ------------------------------------------------------------------ wake-ups */

/* Marks a stream dirty and resumes it if its reader suspended it (under ev->mu). */
static void wake_locked(stream *s)
{
    s->dirty = 1;
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

/* The job runtime's change listener (jobs_live.h): job_id's streams, or all (NULL). */
static void on_job_change(void *arg, const char *job_id)
{
    events *ev = arg;
    pthread_mutex_lock(&ev->mu);
    for (stream *s = ev->streams; s; s = s->next)
        if (!job_id || strcmp(s->id, job_id) == 0)
            wake_locked(s);
    pthread_mutex_unlock(&ev->mu);
}

/* The ticker's view of the suspended streams for one poll: their sockets (after the wake
 * eventfd in slot 0) and serial numbers. Grows as needed; on no memory, watches fewer. */
typedef struct {
    struct pollfd *pf;
    uint64_t *serial;
    size_t n, cap;
} watch_set;

static void watch_collect_locked(events *ev, watch_set *w)
{
    size_t want = 1;
    for (stream *s = ev->streams; s; s = s->next)
        want += s->suspended && s->fd >= 0;
    if (want > w->cap) {
        struct pollfd *pf = realloc(w->pf, want * sizeof *pf);
        if (pf)
            w->pf = pf;
        uint64_t *serial = pf ? realloc(w->serial, want * sizeof *serial) : NULL;
        if (serial) {
            w->serial = serial;
            w->cap = want;
        }
    }
    w->n = 0;
    if (!w->cap)
        return;
    w->pf[w->n++] = (struct pollfd){.fd = ev->wake_fd, .events = POLLIN};
    for (stream *s = ev->streams; s && w->n < w->cap; s = s->next) {
        if (s->suspended && s->fd >= 0) {
            w->serial[w->n] = s->serial;
            w->pf[w->n++] = (struct pollfd){.fd = s->fd, .events = POLLRDHUP};
        }
    }
}

/* Ends the streams whose sockets reported a hang-up (still suspended, same serial). */
static void watch_reap_locked(events *ev, const watch_set *w)
{
    for (size_t i = 1; i < w->n; i++) {
        if (!(w->pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR)))
            continue;
        for (stream *s = ev->streams; s; s = s->next) {
            if (s->serial == w->serial[i]) {
                if (s->suspended) {
                    s->gone = 1;
                    wake_locked(s);
                }
                break;
            }
        }
    }
}

/* Once a second: resumes the suspended streams that poll the store or owe a heartbeat; in
 * between, watches their sockets for clients that hung up. */
static void *ticker_main(void *arg)
{
    events *ev = arg;
    watch_set w = {0};
    double next_tick = clock_monotonic() + 1.0;
    pthread_mutex_lock(&ev->mu);
    while (!ev->stop) {
        watch_collect_locked(ev, &w);
        pthread_mutex_unlock(&ev->mu);
        int ms = (int)((next_tick - clock_monotonic()) * 1e3) + 1;
        poll(w.pf, w.n, ms > 0 ? ms : 0); /* with nothing to watch (no memory): a sleep */
        uint64_t drained;
        if (w.n && (w.pf[0].revents & POLLIN) && read(ev->wake_fd, &drained, sizeof drained) < 0)
            drained = 0;
        pthread_mutex_lock(&ev->mu);
        if (ev->stop)
            break;
        watch_reap_locked(ev, &w);
        double now = clock_monotonic();
        if (now < next_tick)
            continue;
        next_tick = now + 1.0;
        for (stream *s = ev->streams; s; s = s->next)
            if (s->suspended && (s->poll_store || now - s->last_write >= HEARTBEAT_SECONDS))
                wake_locked(s);
    }
    pthread_mutex_unlock(&ev->mu);
    free(w.pf);
    free(w.serial);
    return NULL;
}

/* ------------------------------------------------------------------ life cycle */

events *events_new(jobs *j, store *st, char *err, size_t errlen)
{
    events *ev = calloc(1, sizeof *ev);
    if (!ev) {
        snprintf(err, errlen, "events: out of memory");
        goto cleanup;
    }
    ev->j = j;
    ev->st = st;
    pthread_mutex_init(&ev->mu, NULL);
    ev->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev->wake_fd < 0) {
        snprintf(err, errlen, "events: eventfd: %s", strerror(errno));
        events_free(ev);
        ev = NULL;
        goto cleanup;
    }
    if (pthread_create(&ev->ticker, NULL, ticker_main, ev) != 0) {
        snprintf(err, errlen, "events: cannot start the ticker thread: %s", strerror(errno));
        events_free(ev);
        ev = NULL;
        goto cleanup;
    }
    ev->ticker_started = 1;
    jobs_on_change(j, on_job_change, ev);
cleanup:
    return ev;
}

void events_free(events *ev)
{
    if (!ev)
        return;
    if (ev->ticker_started) {
        jobs_on_change(ev->j, NULL, NULL);
        pthread_mutex_lock(&ev->mu);
        ev->stop = 1;
        pthread_mutex_unlock(&ev->mu);
        uint64_t one = 1;
        if (write(ev->wake_fd, &one, sizeof one) < 0)
            log_event(LOG_WARN, "events", "msg=\"cannot wake the ticker: %s\"", strerror(errno));
        pthread_join(ev->ticker, NULL);
    }
    if (ev->wake_fd >= 0)
        close(ev->wake_fd);
    pthread_mutex_destroy(&ev->mu);
    free(ev);
}

/* ------------------------------------------------------------------ POST …/events/token */

handler_result h_jobs_events_token(void *ctx, req *r)
{
    server *srv = ctx;
    store_job job;
    store_error se = {0};
    memset(&job, 0, sizeof job);
    int rc = store_job_get(srv->st, r->owner, r->param[0], &job, &se);
    store_job_clear(&job);
    if (rc < 0)
        return handlers_reply_store_error(r, rc, &se, "job", r->param[0]);
    char token[SECURITY_TOKEN_MAX], when[32];
    int64_t expires = 0;
    if (security_events_token(srv->sec, r->owner, r->param[0], (int64_t)time(NULL), token,
                              sizeof token, &expires) != 0)
        return http_reply_problem(r, 500, "could not make a token for job %s", r->param[0]);
    handlers_rfc3339(when, expires);
    json_t *out = json_pack("{s:s, s:s}", "token", token, "expires_at", when);
    explicit_bzero(token, sizeof token);
    return http_reply_json(r, 200, out);
}
