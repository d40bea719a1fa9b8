/* The `corridor` program: process-wide set-up, then the command line (cli.c). */
#include <stdio.h>
#include <sys/resource.h>

#include <sodium.h>

#include "cli.h"

int main(int argc, char **argv)
{
    /* Secrets live in this process's memory: never write them to a core file. */
    struct rlimit no_core = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &no_core);
    if (sodium_init() < 0) {
        fprintf(stderr, "corridor: libsodium failed to initialise\n");
        return EXIT_INTERNAL;
    }
    return cli_main(argc, argv);
}
