/* config.h — the settings of backpropd (one table in config.c: flag, environment variable,
 * type, default, help) and the process start-up entry points main.c calls.
 *
 * Precedence: built-in default < environment variable < command-line flag.
 */
#ifndef BACKPROPD_CONFIG_H
#define BACKPROPD_CONFIG_H

#include <stddef.h>

#include "server/server.h"

typedef enum {
    CONFIG_OK = 0,    /* cfg filled, go on */
    CONFIG_EXIT = 1,  /* --help was printed: exit 0 */
    CONFIG_ERROR = -1 /* err holds "--port: must be an integer in 0..65535": exit 2 */
} config_result;

/* Fills *cfg from the defaults, the environment and argv (borrowed). On CONFIG_ERROR, err
 * holds one line naming the flag or variable and what it must be. Also refuses binding
 * beyond loopback without --api-keys-file unless --insecure. */
config_result config_load(config *cfg, int argc, char **argv, char *err, size_t errlen);
/* Prints the option table (--help) to stdout. */
void config_print_help(void);
/* 1 if addr is a loopback address or name (127.0.0.0/8, ::1, localhost). */
int config_is_loopback(const char *addr);
/* Number of online cores (>= 1). */
int config_cores(void);

#endif
