/* config.c — every setting of backpropd in ONE table (flag, environment variable, type,
 * default, help), in the manner of Redis' config.c. Defaults are applied first, then the
 * environment (BACKPROPD_*), then the command line (--flag VALUE or --flag=VALUE). --help
 * prints the table. A bad value names the flag or variable and what it must be.
 */
#include "server/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server/common/log.h"

typedef enum {
    OPT_STR,   /* char[size] */
    OPT_INT,   /* int in min..max */
    OPT_SIZE,  /* int64_t bytes in min..max, suffix K/M/G (powers of 1024) allowed */
    OPT_BOOL,  /* int 0/1; the flag alone means 1 */
    OPT_LEVEL  /* int log level: error warn info debug */
} opt_type;

typedef struct {
    const char *flag;     /* "--port" */
    const char *env;      /* "BACKPROPD_PORT" */
    opt_type type;
    size_t offset;        /* into config */
    size_t size;          /* OPT_STR: buffer size */
    int64_t min, max;     /* OPT_INT, OPT_SIZE */
    const char *def;      /* default as text; "cores" = number of online cores */
    const char *metavar;  /* "PORT" in the help */
    const char *help;
} option;

#define STR(field) OPT_STR, offsetof(config, field), sizeof(((config *)0)->field), 0, 0
#define INT(field, lo, hi) OPT_INT, offsetof(config, field), 0, (lo), (hi)
#define SIZE(field, lo, hi) OPT_SIZE, offsetof(config, field), 0, (lo), (hi)
#define BOOL(field) OPT_BOOL, offsetof(config, field), 0, 0, 1
#define LEVEL(field) OPT_LEVEL, offsetof(config, field), 0, 0, 3

static const option options[] = {
    {"--bind", "BACKPROPD_BIND", STR(bind), "127.0.0.1", "ADDR",
     "address to listen on; beyond loopback needs --api-keys-file (or --insecure)"},
    {"--port", "BACKPROPD_PORT", INT(port, 0, 65535), "8080", "PORT",
     "TCP port; 0 = any free port (the real one is printed)"},
    {"--data", "BACKPROPD_DATA", STR(data), "./data", "DIR",
     "data directory (the embedded SQLite store)"},
    {"--store", "BACKPROPD_STORE", STR(store), "", "URI",
     "shared store instead of --data: postgres://user@host/db (any libpq URI); several "
     "instances on one database share the queue"},
    {"--workers", "BACKPROPD_WORKERS", INT(workers, 1, 1024), "cores", "N",
     "training worker threads"},
    {"--job-threads", "BACKPROPD_JOB_THREADS", INT(job_threads, 0, 1024), "0", "N",
     "threads one training job uses (the weights are the same at any count); 0 = all cores "
     "for a job running alone, shared evenly among the jobs running"},
    {"--max-body", "BACKPROPD_MAX_BODY", SIZE(max_body, 1, INT64_C(1) << 40), "256M", "BYTES",
     "largest request body (K, M, G suffixes); larger gets 413"},
    {"--max-queue", "BACKPROPD_MAX_QUEUE", INT(max_queue, 1, 1000000), "64", "N",
     "queued + running jobs before POST /v1/jobs answers 429"},
    {"--api-keys-file", "BACKPROPD_API_KEYS_FILE", STR(api_keys_file), "", "FILE",
     "API keys, one \"name:key\" per line; every /v1 call then needs a key"},
    {"--cors-origins", "BACKPROPD_CORS_ORIGINS", STR(cors_origins), "", "LIST",
     "comma-separated origins allowed by CORS (exact match)"},
    {"--tls-cert", "BACKPROPD_TLS_CERT", STR(tls_cert), "", "FILE",
     "PEM certificate: serve HTTPS (with --tls-key)"},
    {"--tls-key", "BACKPROPD_TLS_KEY", STR(tls_key), "", "FILE", "PEM private key for --tls-cert"},
    {"--insecure", "BACKPROPD_INSECURE", BOOL(insecure), "0", NULL,
     "allow binding beyond loopback without API keys"},
    {"--log-level", "BACKPROPD_LOG_LEVEL", LEVEL(log_level), "info", "LEVEL",
     "error, warn, info or debug"},
    {"--checkpoint-seconds", "BACKPROPD_CHECKPOINT_SECONDS", INT(checkpoint_seconds, 1, 86400),
     "10", "S", "seconds between checkpoints of a running job"},
    {"--max-connections", "BACKPROPD_MAX_CONNECTIONS", INT(max_connections, 1, 1000000), "1024",
     "N", "open connections at most"},
    {"--max-per-ip", "BACKPROPD_MAX_PER_IP", INT(max_per_ip, 1, 1000000), "64", "N",
     "open connections per client address at most"},
    {"--idle-timeout", "BACKPROPD_IDLE_TIMEOUT", INT(idle_timeout, 1, 86400), "60", "S",
     "seconds before an idle connection is closed"},
    {"--header-timeout", "BACKPROPD_HEADER_TIMEOUT", INT(header_timeout, 1, 3600), "10", "S",
     "seconds a client has to send a request's headers (from connecting, or from its previous answer); a body must then average 1 KiB/s"},
    {"--connection-memory", "BACKPROPD_CONNECTION_MEMORY",
     SIZE(connection_memory, 16 * 1024, INT64_C(64) << 20), "128K", "BYTES",
     "memory per connection for headers and read buffers (bodies are counted by --max-body)"},
    {"--http-threads", "BACKPROPD_HTTP_THREADS", INT(http_threads, 1, 64), "2", "N",
     "threads serving HTTP connections"},
    {"--math-threads", "BACKPROPD_MATH_THREADS", INT(math_threads, 1, 1024), "cores", "N",
     "the work pool: threads that run requests with a body (uploads, jobs, math); one more serves quick requests only"},
    {"--max-pending", "BACKPROPD_MAX_PENDING", INT(max_pending, 1, 1000000), "256", "N",
     "requests queued for the work pool per lane (quick, heavy) before 503; a client gets a quarter of the heavy lane"},
    {"--quota-jobs", "BACKPROPD_QUOTA_JOBS", INT(quota_jobs, 0, 1000000), "0", "N",
     "queued+running jobs per API key; 0 = no limit"},
    {"--quota-bytes", "BACKPROPD_QUOTA_BYTES", SIZE(quota_bytes, 0, INT64_C(1) << 50), "0",
     "BYTES", "stored dataset bytes per API key; 0 = no limit"},
    {"--rate-limit", "BACKPROPD_RATE_LIMIT", INT(rate_limit, 0, 1000000), "0", "N",
     "requests per second per key and per address; 0 = no limit"},
    {"--metrics-auth", "BACKPROPD_METRICS_AUTH", BOOL(metrics_auth), "0", NULL,
     "GET /metrics needs an API key"},
    {"--idempotency-ttl", "BACKPROPD_IDEMPOTENCY_TTL", INT(idempotency_ttl, 1, 30 * 86400),
     "86400", "SECONDS", "how long an Idempotency-Key of POST /v1/jobs and /v1/datasets is kept"},
};
static const int n_options = (int)(sizeof options / sizeof options[0]);

int config_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)(n > 1024 ? 1024 : n) : 1;
}

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Parses a decimal integer, the whole string. 0 ok, -1 not an integer or out of int64. */
static int parse_i64(const char *text, int64_t *out, int allow_suffix)
{
    char *end = NULL;
    if (!text || !*text)
        return -1;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text)
        return -1;
    int64_t mult = 1;
    if (allow_suffix && *end) {
        switch (*end) {
        case 'k': case 'K': mult = INT64_C(1) << 10; break;
        case 'm': case 'M': mult = INT64_C(1) << 20; break;
        case 'g': case 'G': mult = INT64_C(1) << 30; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
    }
    if (*end)
        return -1;
    if (v != 0 && (v > INT64_MAX / mult || v < INT64_MIN / mult))
        return -1;
    *out = (int64_t)v * mult;
    return 0;
}

/* Applies one textual value to the option. name = flag or variable, for the message. */
static int set_value(config *cfg, const option *o, const char *name, const char *value,
                     char *err, size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    int64_t v = 0;
    switch (o->type) {
    case OPT_STR:
        if (strlen(value) >= o->size) {
            fail(err, errlen, "%s: must be at most %zu characters", name, o->size - 1);
            return -1;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case OPT_INT:
        if (strcmp(value, "cores") == 0) {
            v = config_cores();
        } else if (parse_i64(value, &v, 0) != 0 || v < o->min || v > o->max) {
            fail(err, errlen, "%s: must be an integer in %" PRId64 "..%" PRId64, name, o->min,
                 o->max);
            return -1;
        }
        *(int *)(void *)field = (int)v;
        return 0;
    case OPT_SIZE:
        if (parse_i64(value, &v, 1) != 0 || v < o->min || v > o->max) {
            fail(err, errlen,
                 "%s: must be a size in bytes in %" PRId64 "..%" PRId64
                 " (suffix K, M or G allowed)",
                 name, o->min, o->max);
            return -1;
        }
        *(int64_t *)(void *)field = v;
        return 0;
    case OPT_BOOL:
        if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
            !strcasecmp(value, "on")) {
            *(int *)(void *)field = 1;
        } else if (!*value || !strcmp(value, "0") || !strcasecmp(value, "false") ||
                   !strcasecmp(value, "no") || !strcasecmp(value, "off")) {
            *(int *)(void *)field = 0;
        } else {
            fail(err, errlen, "%s: must be 1 or 0 (true/false, yes/no)", name);
            return -1;
        }
        return 0;
    case OPT_LEVEL: {
        int level = log_level_parse(value);
        if (level < 0) {
            fail(err, errlen, "%s: must be one of error, warn, info, debug", name);
            return -1;
        }
        *(int *)(void *)field = level;
        return 0;
    }
    }
    return -1;
}

int config_is_loopback(const char *addr)
{
    unsigned char buf[16];
    if (strcasecmp(addr, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, addr, buf) == 1)
        return buf[0] == 127;
    if (inet_pton(AF_INET6, addr, buf) == 1) {
        static const unsigned char v6_loopback[16] = {[15] = 1};
        /* ::1, or an IPv4-mapped 127.x.y.z (::ffff:127.0.0.1) */
        if (memcmp(buf, v6_loopback, 16) == 0)
            return 1;
        static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(buf, mapped, 12) == 0 && buf[12] == 127;
    }
    return 0;
}

void config_print_help(void)
{
    printf("usage: backpropd [options]\n"
           "Trains neural networks by backpropagation over HTTP (see GET /openapi.yaml).\n"
           "Every option can also be set by its environment variable; flags win.\n\n");
    for (int i = 0; i < n_options; i++) {
        const option *o = &options[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->flag, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        char def[64];
        if (strcmp(o->def, "cores") == 0)
            snprintf(def, sizeof def, "cores (%d)", config_cores());
        else if (o->type == OPT_BOOL)
            snprintf(def, sizeof def, "%s", strcmp(o->def, "0") ? "on" : "off");
        else
            snprintf(def, sizeof def, "%s", *o->def ? o->def : "none");
        printf("  %-26s %-30s %s [default: %s]\n", left, o->env, o->help, def);
    }
    printf("  %-26s %-30s %s\n", "--help", "", "print this help and exit");
}

static const option *find_flag(const char *arg, size_t len)
{
    for (int i = 0; i < n_options; i++)
        if (strlen(options[i].flag) == len && strncmp(options[i].flag, arg, len) == 0)
            return &options[i];
    return NULL;
}

config_result config_load(config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    if (errlen)
        err[0] = '\0';
    for (int i = 0; i < n_options; i++)
        if (set_value(cfg, &options[i], options[i].flag, options[i].def, err, errlen) != 0)
            return CONFIG_ERROR; /* a bad default is a bug, said clearly */

    for (int i = 0; i < n_options; i++) {
        const char *v = getenv(options[i].env);
        if (v && set_value(cfg, &options[i], options[i].env, v, err, errlen) != 0)
            return CONFIG_ERROR;
    }

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            config_print_help();
            return CONFIG_EXIT;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fail(err, errlen, "unexpected argument '%s' (options start with --; see --help)",
                 arg);
            return CONFIG_ERROR;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const option *o = find_flag(arg, name_len);
        if (!o) {
            fail(err, errlen, "unknown option '%.*s' (see --help)", (int)name_len, arg);
            return CONFIG_ERROR;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (o->type == OPT_BOOL) {
            value = "1";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fail(err, errlen, "%s: needs a value (%s)", o->flag, o->metavar);
            return CONFIG_ERROR;
        }
        if (set_value(cfg, o, o->flag, value, err, errlen) != 0)
            return CONFIG_ERROR;
    }

    if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
        fail(err, errlen, "--tls-cert and --tls-key go together: give both or neither");
        return CONFIG_ERROR;
    }
    if (!config_is_loopback(cfg->bind) && !cfg->api_keys_file[0] && !cfg->insecure) {
        fail(err, errlen,
             "--bind %s: refusing to listen beyond loopback without --api-keys-file: anyone "
             "who can reach this address could upload data and run jobs. Give "
             "--api-keys-file FILE, or --insecure (BACKPROPD_INSECURE=1) if you mean it",
             cfg->bind);
        return CONFIG_ERROR;
    }
    return CONFIG_OK;
}
