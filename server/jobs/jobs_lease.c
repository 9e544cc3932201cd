/* jobs_lease.c — lease owner identities and start-up recovery of the leases of dead processes
 * (jobs_lease.h). Linux: liveness comes from kill(pid, 0) and /proc.
 */
#include "server/jobs/jobs_lease.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "server/common/log.h"

#define PID_REUSE_SLACK_MS 2000 /* /proc/stat's btime is whole seconds */

void jobs_lease_self(char *host, size_t host_len, char *boot, size_t boot_len)
{
    char name[65] = "host";
    if (gethostname(name, sizeof name - 1) != 0)
        snprintf(name, sizeof name, "host");
    name[sizeof name - 1] = '\0';
    for (char *p = name; *p; p++) /* keep the owner parsable and log-safe */
        if (*p == ':' || *p == '"' || *p == ' ' || (unsigned char)*p < 0x20)
            *p = '_';
    char kboot[9] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(kboot, sizeof kboot, f))
            kboot[0] = '\0';
        fclose(f);
    }
    if (strlen(kboot) == 8)
        snprintf(host, host_len, "%.60s/%s", name, kboot);
    else
        snprintf(host, host_len, "%.60s", name);

    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
            ((uint64_t)getpid() << 40);
    }
    snprintf(boot, boot_len, "%016llx", (unsigned long long)r);
}

int jobs_lease_owner_parse(const char *owner, char *host, size_t host_len, long *pid,
                           char *boot, size_t boot_len, int *worker)
{
    if (!owner)
        return -1;
    /* the last three ':' separate pid, boot and worker; the host is everything before */
    const char *c3 = strrchr(owner, ':');
    if (!c3 || c3 == owner)
        return -1;
    const char *c2 = c3 - 1;
    while (c2 > owner && *c2 != ':')
        c2--;
    if (*c2 != ':' || c2 == owner)
        return -1;
    const char *c1 = c2 - 1;
    while (c1 > owner && *c1 != ':')
        c1--;
    if (*c1 != ':' || c1 == owner)
        return -1;
    char *end;
    errno = 0;
    long p = strtol(c1 + 1, &end, 10);
    if (end != c2 || errno || p <= 0)
        return -1;
    long w = strtol(c3 + 1, &end, 10);
    if (*end || end == c3 + 1 || w < 0 || w > 1000000)
        return -1;
    size_t hl = (size_t)(c1 - owner), bl = (size_t)(c3 - c2 - 1);
    if (hl >= host_len || bl == 0 || bl >= boot_len)
        return -1;
    memcpy(host, owner, hl);
    host[hl] = '\0';
    memcpy(boot, c2 + 1, bl);
    boot[bl] = '\0';
    *pid = p;
    *worker = (int)w;
    return 0;
}

/* Reads /proc/<pid>/stat into buf and returns where field 3 (state) starts: field 2 (comm) may
 * hold spaces and ')', so fields 3.. start after the last ')'. NULL when unreadable. */
static char *proc_stat_fields(long pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return NULL;
    while (*++p == ' ')
        ;
    return p;
}

/* 1 when pid has exited but is not reaped yet (state Z, zombie, or X, dead): it answers
 * kill(pid, 0) but will never run again. 0 otherwise or unknown. */
static int process_exited(long pid)
{
    char buf[1024];
    const char *p = proc_stat_fields(pid, buf, sizeof buf);
    return p && (*p == 'Z' || *p == 'X');
}

/* Unix ms at which process pid started, or -1 when unknown. */
static int64_t process_start_ms(long pid)
{
    char buf[1024];
    char *p = proc_stat_fields(pid, buf, sizeof buf);
    if (!p)
        return -1;
    unsigned long long start_ticks = 0;
    /* fields 3..21 skipped, field 22 = starttime in clock ticks since boot */
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -1;
        if (field == 22) {
            char *end;
            start_ticks = strtoull(p, &end, 10);
            if (end == p)
                return -1;
            break;
        }
        while (*p && *p != ' ')
            p++;
    }
    long long btime = -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &btime) == 1)
            break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime < 0 || hz <= 0)
        return -1;
    return (int64_t)btime * 1000 + (int64_t)(start_ticks * 1000ull / (unsigned long long)hz);
}

int jobs_lease_owner_dead(const char *owner, const char *my_host, pid_t my_pid,
                          const char *my_boot, int64_t last_renewal_ms, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    char host[128], boot[64];
    long pid;
    int worker;
    if (jobs_lease_owner_parse(owner, host, sizeof host, &pid, boot, sizeof boot, &worker) < 0) {
        *why = "unknown_owner";
        return 0;
    }
    if (strcmp(host, my_host) != 0) {
        *why = "other_host";
        return 0;
    }
    if (pid == (long)my_pid) {
        if (strcmp(boot, my_boot) == 0) {
            *why = "this_process";
            return 0;
        }
        *why = "previous_process_same_pid";
        return 1;
    }
    if (pid > (long)INT32_MAX) {
        *why = "unknown_owner";
        return 0;
    }
    if ((kill((pid_t)pid, 0) != 0 && errno == ESRCH) || process_exited(pid)) {
        *why = "process_gone";
        return 1;
    }
    if (last_renewal_ms > 0) {
        int64_t started = process_start_ms(pid);
        if (started > 0 && started > last_renewal_ms + PID_REUSE_SLACK_MS) {
            *why = "pid_reused";
            return 1;
        }
    }
    *why = "process_alive";
    return 0;
}

/* A log-safe copy of text from the store: no quotes, backslashes or control characters, and
 * no spaces unless `spaces` (a quoted value). */
static const char *safe_token(const char *in, char *out, size_t cap, int spaces)
{
    size_t o = 0;
    for (; in && *in && o + 1 < cap; in++)
        out[o++] = (*in == '"' || *in == '\\' || (*in == ' ' && !spaces) ||
                    (unsigned char)*in < 0x20) ? '_' : *in;
    out[o] = '\0';
    return out;
}

int jobs_recover_dead_leases(store *st, const char *my_host, pid_t my_pid, const char *my_boot,
                             int64_t lease_ms, int *recovered)
{
    int n_done = 0, rc = 0;
    store_lease *v = NULL;
    size_t n = 0;
    store_error se = {0};
    char safe[160], safe_err[300];
    if (recovered)
        *recovered = 0;
    rc = store_job_leases(st, &v, &n, &se);
    if (rc < 0) {
        log_event(LOG_WARN, "recovery", "code=%d error=\"%s\"", rc,
                  safe_token(se.msg, safe_err, sizeof safe_err, 1));
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;
        int64_t renewed = v[i].lease_until > lease_ms ? v[i].lease_until - lease_ms : 0;
        if (!jobs_lease_owner_dead(v[i].lease_owner, my_host, my_pid, my_boot, renewed, &why))
            continue;
        int r = store_job_expire_lease(st, v[i].id, v[i].lease_owner, &se);
        if (r == 0) {
            n_done++;
            log_event(LOG_INFO, "job", "id=%s status=queued recovered=1 reason=%s "
                      "previous_owner=%s", v[i].id, why,
                      safe_token(v[i].lease_owner, safe, sizeof safe, 0));
        } else if (r == STORE_CONFLICT) {
            log_event(LOG_DEBUG, "recovery", "id=%s skipped=1 reason=lease_changed", v[i].id);
        } else {
            log_event(LOG_WARN, "recovery", "id=%s code=%d error=\"%s\"", v[i].id, r,
                      safe_token(se.msg, safe_err, sizeof safe_err, 1));
        }
    }
cleanup:
    free(v);
    if (recovered)
        *recovered = n_done;
    return rc;
}
