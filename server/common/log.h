/* log.h — one structured line per event on stderr, logfmt:
 *   ts=2026-11-26T19:00:00.123Z level=info event=request method=GET path=/healthz status=200 ms=0.12
 * Level set by --log-level. Never log request bodies, datasets or keys.
 */
#ifndef BACKPROPD_LOG_H
#define BACKPROPD_LOG_H

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(int level);
int log_level_parse(const char *name); /* -1 if unknown */
/* fmt continues the line with more key=value pairs (values with spaces must be quoted by
 * the caller, from a copy made safe first: no quotes, backslashes or control characters).
 * Thread-safe: one write(2) per line. */
void log_event(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
