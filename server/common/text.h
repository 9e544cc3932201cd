/* text.h — making text from outside safe to print: one escaper for log lines and one sanitiser
 * for names that are stored and shown (dataset and job names); and the one string hash the
 * server's in-memory tables use.
 */
#ifndef BACKPROPD_TEXT_H
#define BACKPROPD_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Copies s into out (cap bytes, always NUL-terminated; cut at a whole escape) for a log line
 * or a message: printable ASCII except space, quote, backslash and percent stays; every other
 * byte becomes %XX, so any input gives safe, valid ASCII that can be decoded back. NULL → "".
 * Returns out. */
const char *text_log_safe(char *out, size_t cap, const char *s);

/* Copies a name into out (cap bytes, NUL-terminated, cut at a whole UTF-8 character): control
 * characters, DEL, quotes, backslashes and broken UTF-8 become '_'. Returns out. */
const char *text_name_safe(char *out, size_t cap, const char *in);

/* FNV-1a of s's bytes (NULL hashes as ""): for picking a slot in a table, not a secret. */
uint32_t text_hash(const char *s);

#endif
