/* jobs_lease.h — who holds a job's lease, and start-up recovery of the leases of dead processes.
 *
 * Every worker writes its identity into the store as the lease owner of the job it runs:
 *     "host:pid:boot:worker"
 * host = gethostname() + "/" + the first 8 hex digits of the kernel's boot id (two machines
 * cloned with the same hostname, or one machine after a reboot, are different hosts); pid =
 * getpid(); boot = 16 random hex digits drawn at each process start (getrandom), so a
 * container restarted as pid 1 is not its previous self; worker = the worker thread's index.
 *
 * At start, before any worker runs, jobs_recover_dead_leases() gives back to the queue every
 * running job whose lease owner is on THIS host and provably gone, with a compare-and-set on
 * the owner (store_job_expire_lease), so a live instance that renews concurrently is never
 * robbed. Jobs of other hosts, and of processes that may be alive, are left to lease expiry.
 * Assumption: instances that share one store have distinct hostnames (Docker and Kubernetes
 * give every container its own by default). A wrong guess would cost work, never
 * correctness: every write a worker makes checks its lease in the same transaction.
 */
#ifndef BACKPROPD_JOBS_LEASE_H
#define BACKPROPD_JOBS_LEASE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/store/store.h"

/* This process's host and boot parts (each NUL-terminated, truncated to fit). The boot part
 * is drawn afresh at every call: call once per process start. */
void jobs_lease_self(char *host, size_t host_len, char *boot, size_t boot_len);

/* Splits "host:pid:boot:worker" (host may itself contain ':'; split from the right).
 * 0 ok, -1 when owner is not in that form. */
int jobs_lease_owner_parse(const char *owner, char *host, size_t host_len, long *pid,
                           char *boot, size_t boot_len, int *worker);

/* Is the process that holds a lease provably gone? 1 dead, 0 alive or unknown (another host,
 * unparsable owner, a pid that may still be the holder). *why (may be NULL) gets a short
 * static token for logs. Dead means, on my_host only:
 *   - pid == my_pid with another boot: this process is the holder's successor (a restarted
 *     container is pid 1 again); with the same boot it is this very process (alive);
 *   - no process has that pid (kill(pid, 0) fails with ESRCH), or the process with that pid
 *     has exited and waits to be reaped (/proc/<pid>/stat state Z or X: a zombie answers
 *     kill(pid, 0) but renews nothing, e.g. after kill -9 under a parent that has not waited);
 *   - the process with that pid started (/proc/<pid>/stat) more than 2 s after the lease's
 *     last renewal (last_renewal_ms, unix ms; 0 = unknown, skips this test): the pid was
 *     reused. */
int jobs_lease_owner_dead(const char *owner, const char *my_host, pid_t my_pid,
                          const char *my_boot, int64_t last_renewal_ms, const char **why);

/* Start-up recovery: for every running job of st whose lease owner is dead (above; a job's
 * last renewal is taken as lease_until - lease_ms), store_job_expire_lease() puts it back in
 * the queue and one log line says so. *recovered (may be NULL) counts them. 0 ok, or the
 * store_code of listing the leases (a job that another worker took meanwhile is skipped). */
int jobs_recover_dead_leases(store *st, const char *my_host, pid_t my_pid, const char *my_boot,
                             int64_t lease_ms, int *recovered);

#endif
