/* security.c — TEMPORARY link stub, replaced by its owner. */
#include "security.h"
#include <stdlib.h>
struct security { int unused; };
security *security_new(const config *cfg, char *err, size_t errlen) { (void)cfg; (void)err; (void)errlen; return calloc(1, sizeof(security)); }
void security_free(security *sec) { free(sec); }
int security_has_keys(const security *sec) { (void)sec; return 0; }
int security_check(server *s, req *r, int open) { (void)s; (void)r; (void)open; return 0; }
void security_decorate(server *s, req *r) { (void)s; (void)r; }
int security_quota_job(server *s, req *r) { (void)s; (void)r; return 0; }
int security_quota_bytes(server *s, req *r, int64_t new_bytes) { (void)s; (void)r; (void)new_bytes; return 0; }
