/* pg.c — a throwaway PostgreSQL cluster for tests (harness.h): initdb + pg_ctl on a temporary
 * directory and a free port, run as the unprivileged user `nobody` when the tests run as root
 * (initdb refuses root); databases made with psql. Nothing is assumed running: not Debian's
 * main cluster, not a service. The cluster's port and directory are passed to the processes a
 * test binary forks through the environment (BPD_PG_PORT, BPD_PG_DIR), so one cluster serves
 * every test of a binary. No Criterion, no libpq here: the benchmarks and HTTP tests use it.
 */
#include "tests/harness.h"

#include <arpa/inet.h>
#include <glob.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The newest PostgreSQL server binary directory (Debian: /usr/lib/postgresql/<v>/bin). */
static int pg_bindir(char *out, size_t cap)
{
    glob_t g;
    int rc = -1;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        const char *last = g.gl_pathv[g.gl_pathc - 1];
        snprintf(out, cap, "%.*s", (int)(strlen(last) - strlen("/initdb")), last);
        rc = 0;
    }
    globfree(&g);
    return rc;
}

/* Runs argv (as nobody when we are root), output to logpath (NULL: /dev/null); exit status. */
static int run_as_db_user(char *const argv[], const char *logpath)
{
    struct passwd *pw = geteuid() == 0 ? getpwnam("nobody") : NULL;
    fflush(NULL); /* the child's freopen would write our buffered output a second time */
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *f = freopen(logpath ? logpath : "/dev/null", "a", stdout);
        (void)f;
        dup2(1, 2);
        if (pw && (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
                   setuid(pw->pw_uid) != 0))
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int pg_ctl(const char *action, const char *mode)
{
    const char *dir = getenv("BPD_PG_DIR"), *port = getenv("BPD_PG_PORT");
    char bin[256], exe[300], data[300], log[300], opts[400];
    if (!dir || !port || pg_bindir(bin, sizeof bin) < 0)
        return -1;
    snprintf(exe, sizeof exe, "%s/pg_ctl", bin);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    snprintf(opts, sizeof opts, "-p %s -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
             "-c max_connections=300 -c shared_buffers=64MB -c max_wal_size=1GB", port, dir);
    if (strcmp(action, "start") == 0) {
        char *argv[] = {exe, "-D", data, "-l", log, "-o", opts, "-w", "-t", "60", "start", NULL};
        return run_as_db_user(argv, NULL);
    }
    char md[16], act[16];
    snprintf(md, sizeof md, "%s", mode ? mode : "fast");
    snprintf(act, sizeof act, "%s", action);
    char *argv[] = {exe, "-D", data, "-m", md, "-w", "-t", "60", act, NULL};
    return run_as_db_user(argv, NULL);
}

int pg_cluster_start(void)
{
    char bin[256], dir[] = "/tmp/bpd_pg_XXXXXX", exe[300], data[300], log[300], port[16];
    if (getenv("BPD_PG_DIR"))
        return 0; /* started by this process or a parent */
    if (pg_bindir(bin, sizeof bin) < 0 || !mkdtemp(dir)) {
        fprintf(stderr, "pg_cluster_start: no PostgreSQL server (scripts/install-deps)\n");
        return -1;
    }
    struct passwd *pw = geteuid() == 0 ? getpwnam("nobody") : NULL;
    if (pw && chown(dir, pw->pw_uid, pw->pw_gid) != 0)
        return -1;
    chmod(dir, 0755);
    snprintf(exe, sizeof exe, "%s/initdb", bin);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log, sizeof log, "%s/initdb.log", dir);
    char *argv[] = {exe, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--no-sync", "--locale=C", NULL};
    if (run_as_db_user(argv, NULL) != 0) {
        fprintf(stderr, "pg_cluster_start: initdb failed in %s\n", dir);
        return -1;
    }
    snprintf(port, sizeof port, "%d", free_port());
    setenv("BPD_PG_DIR", dir, 1);
    setenv("BPD_PG_PORT", port, 1);
    if (pg_ctl("start", NULL) != 0) {
        fprintf(stderr, "pg_cluster_start: pg_ctl start failed (%s/server.log)\n", dir);
        return -1;
    }
    return 0;
}

void pg_cluster_stop(void)
{
    const char *dir = getenv("BPD_PG_DIR");
    if (!dir)
        return;
    pg_ctl("stop", "immediate");
    char copy[256];
    snprintf(copy, sizeof copy, "%s", dir);
    test_rm_tree(copy);
    unsetenv("BPD_PG_DIR");
    unsetenv("BPD_PG_PORT");
}

int pg_cluster_stop_server(void)
{
    return pg_ctl("stop", "fast");
}

int pg_cluster_start_server(void)
{
    return pg_ctl("start", NULL);
}

int pg_new_database(char *uri, size_t cap)
{
    static unsigned counter;
    const char *port = getenv("BPD_PG_PORT");
    if (!port)
        return -1;
    char name[64], sql[128], portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%s", port);
    snprintf(name, sizeof name, "t_%d_%u_%ld", (int)getpid(), counter++, (long)random() % 100000);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    char *argv[] = {"/usr/bin/psql", "-X", "-q", "-h", "127.0.0.1", "-p", portbuf, "-U",
                    "postgres", "-d", "postgres", "-c", sql, NULL};
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *f = freopen("/dev/null", "w", stdout);
        (void)f;
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    snprintf(uri, cap, "postgres://postgres@127.0.0.1:%s/%s", port, name);
    return 0;
}
