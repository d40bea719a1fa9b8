/*
 * The `corridor` command line: parses arguments, runs one subcommand, returns its exit code
 * (include/corridor/exit.h).
 */
#ifndef CORRIDOR_CLI_H
#define CORRIDOR_CLI_H

#include "corridor/exit.h"

/* Runs `corridor argv[1] ...`. */
int cli_main(int argc, char **argv);

#endif
