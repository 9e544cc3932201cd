/* process.c — the server under test: starts the real backpropd binary (BACKPROPD_BIN) on an
 * ephemeral port with a fresh temporary data directory, restarts it, stops it (SIGTERM, or
 * kill -9), removes its data and reads its log (where the harness looks for sanitizer reports).
 *
 * Criterion runs each test in its own forked process, possibly several at once: everything
 * here lives in the caller's srv struct; nothing is shared between tests. The server child gets
 * PR_SET_PDEATHSIG so it dies with a test that crashed before srv_stop().
 */
#include "tests/harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 15000

double test_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double test_now_ms(void)
{
    return test_now_s() * 1e3;
}

void test_sleep_ms(int ms)
{
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

const char *srv_bin(void)
{
    const char *b = getenv("BACKPROPD_BIN");
    return b && *b ? b : "build/backpropd";
}

/* Reads the server's stdout until "listening http://ADDR:PORT\n"; returns the port or -1. */
static int read_listening_line(int fd, pid_t pid)
{
    char line[512];
    size_t used = 0;
    double deadline = test_now_ms() + START_TIMEOUT_MS;
    for (;;) {
        int left = (int)(deadline - test_now_ms());
        if (left <= 0)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int n = poll(&pfd, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        ssize_t got = read(fd, line + used, sizeof line - 1 - used);
        if (got <= 0) /* the server exited before listening */
            return -1;
        used += (size_t)got;
        line[used] = '\0';
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
            const char *p = strstr(line, "listening http");
            const char *colon = p ? strrchr(p, ':') : NULL;
            int port = colon ? atoi(colon + 1) : -1;
            return port > 0 && port < 65536 ? port : -1;
        }
        if (used >= sizeof line - 1)
            return -1;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1;
    }
}

int srv_spawn(srv *s, const char *const *extra)
{
    int out[2];
    if (pipe(out) != 0)
        return -1;
    const char *argv[64];
    int n = 0;
    argv[n++] = srv_bin();
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--data";
    argv[n++] = s->datadir;
    argv[n++] = "--log-level";
    argv[n++] = "debug";
    for (int i = 0; extra && extra[i] && n < 63; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int log = open(s->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log < 0)
            _exit(127);
        dup2(out[1], STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        execv(argv[0], (char *const *)(void *)argv);
        dprintf(STDERR_FILENO, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    s->pid = pid;
    s->port = read_listening_line(out[0], pid);
    close(out[0]); /* the server ignores SIGPIPE; it prints nothing more on stdout */
    if (s->port < 0) {
        char *log = srv_log(s);
        fprintf(stderr, "harness: backpropd (%s) did not print \"listening\" within %d s; its log:\n%s\n",
                srv_bin(), START_TIMEOUT_MS / 1000, log ? log : "(none)");
        free(log);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        s->pid = 0;
        return -1;
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return 0;
}

int srv_prepare(srv *s)
{
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->datadir, sizeof s->datadir, "%s/backpropd-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->datadir)) {
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    s->own_dir = 1;
    snprintf(s->logpath, sizeof s->logpath, "%s/server.log", s->datadir);
    return 0;
}

int srv_start_keys(srv *s, const char *keys, const char *const *extra)
{
    if (srv_prepare(s) < 0)
        return -1;
    char path[sizeof s->datadir + 8];
    snprintf(path, sizeof path, "%s/keys", s->datadir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(keys, f) >= 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || chmod(path, 0600) != 0)
        return -1;
    const char *args[17] = {"--api-keys-file", path};
    for (int i = 0; extra && extra[i] && i < 14; i++)
        args[2 + i] = extra[i];
    return srv_spawn(s, args);
}

int srv_start(srv *s, const char *const *extra)
{
    return srv_prepare(s) == 0 ? srv_spawn(s, extra) : -1;
}

int srv_restart(srv *s, const char *const *extra)
{
    s->pid = 0;
    s->port = 0;
    s->base[0] = '\0';
    return srv_spawn(s, extra);
}

/* Waits for pid up to ms; returns 1 and fills *status when it exited. */
static int wait_exit(pid_t pid, int ms, int *status)
{
    double deadline = test_now_ms() + ms;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return 1;
        if (w < 0 && errno != EINTR)
            return 0;
        if (test_now_ms() > deadline)
            return 0;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int srv_shutdown(srv *s, char *why, size_t why_len)
{
    if (s->pid <= 0)
        return 0;
    pid_t pid = s->pid;
    s->pid = 0;
    kill(pid, SIGTERM);
    int status = 0;
    int exited = wait_exit(pid, STOP_TIMEOUT_MS, &status);
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    char *log = srv_log(s);
    static const char *const reports[] = {"ERROR: AddressSanitizer", "runtime error:",
                                          "WARNING: ThreadSanitizer", "ERROR: LeakSanitizer"};
    int clean = 1;
    for (size_t i = 0; log && i < sizeof reports / sizeof reports[0]; i++)
        if (strstr(log, reports[i]))
            clean = 0;
    int ok_exit = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!clean || !ok_exit) {
        size_t len = log ? strlen(log) : 0;
        const char *tail = log ? (len > 12000 ? log + len - 12000 : log) : "(no log)";
        fprintf(stderr, "harness: server log (%s):\n%s\n", s->logpath, tail);
    }
    free(log);
    if (!exited)
        snprintf(why, why_len, "backpropd did not exit within %d s of SIGTERM",
                 STOP_TIMEOUT_MS / 1000);
    else if (!clean)
        snprintf(why, why_len, "backpropd's log has a sanitizer report (see above)");
    else if (!ok_exit)
        snprintf(why, why_len, "backpropd did not exit 0 (status %d: %s %d)", status,
                 WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return exited && clean && ok_exit ? 0 : -1;
}

void srv_kill9(srv *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

void test_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char child[1024];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
                test_rm_tree(child);
            else
                unlink(child);
        }
        closedir(d);
    }
    rmdir(path);
}

void srv_cleanup(srv *s)
{
    if (s->pid > 0)
        srv_kill9(s);
    if (s->own_dir && s->datadir[0])
        test_rm_tree(s->datadir);
    s->own_dir = 0;
}

char *srv_log(const srv *s)
{
    size_t len;
    return test_slurp(s->logpath, &len);
}

long srv_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = atol(line + n + 1);
    if (f)
        fclose(f);
    return kb;
}
