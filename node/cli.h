/*
 * The `corridor` command line: parses arguments, runs one subcommand, returns its exit code.
 *
 * Exit codes are the contract of DESIGN.md, the same for every subcommand. A usage error or
 * bad input prints one line on stderr and writes nothing.
 */
#ifndef CORRIDOR_CLI_H
#define CORRIDOR_CLI_H

enum {
    EXIT_OK = 0,          /* success */
    EXIT_NEGATIVE = 1,    /* a negative answer: rejected, violations, breaks */
    EXIT_USAGE = 2,       /* usage error or bad input */
    EXIT_UNREACHABLE = 3, /* the node is not running or cannot be reached */
    EXIT_TIMEOUT = 4,     /* timed out waiting */
    EXIT_INTERNAL = 5,    /* internal or storage error */
};

/* Runs `corridor argv[1] ...`. */
int cli_main(int argc, char **argv);

#endif
