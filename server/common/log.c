/* log.c — structured logfmt lines on stderr (log.h).
 *
 * Every line is formatted into one stack buffer and written with a single write(2), so lines
 * from different threads never interleave. The level is one atomic int read on each call.
 */
#include "server/common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(int level)
{
    if (level < LOG_ERROR)
        level = LOG_ERROR;
    if (level > LOG_DEBUG)
        level = LOG_DEBUG;
    atomic_store(&g_level, level);
}

int log_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return LOG_WARN;
    return -1;
}

void log_event(int level, const char *event, const char *fmt, ...)
{
    if (level > atomic_load_explicit(&g_level, memory_order_relaxed))
        return;
    if (level < LOG_ERROR)
        level = LOG_ERROR;
    if (level > LOG_DEBUG)
        level = LOG_DEBUG;

    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], event ? event : "-");
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt && *fmt && used < sizeof line - 2) {
        line[used++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
        va_end(ap);
        if (m > 0)
            used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    }
    /* A line cut short still ends with a newline. */
    if (used >= sizeof line - 1)
        used = sizeof line - 2;
    line[used++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}
