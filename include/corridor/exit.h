/*
 * Exit codes: the same for every subcommand (README, "Exit codes"), and the codes the node
 * puts in its control answers, so the command line passes them on unchanged. A usage error or
 * bad input prints one line on stderr and writes nothing.
 */
#ifndef CORRIDOR_EXIT_H
#define CORRIDOR_EXIT_H

enum {
    EXIT_OK = 0,          /* success */
    EXIT_NEGATIVE = 1,    /* a negative answer: rejected, violations, breaks */
    EXIT_USAGE = 2,       /* usage error or bad input */
    EXIT_UNREACHABLE = 3, /* the node is not running or cannot be reached */
    EXIT_TIMEOUT = 4,     /* timed out waiting */
    EXIT_INTERNAL = 5,    /* internal or storage error */
};

#endif
