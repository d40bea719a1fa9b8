/*
 * The `corridor` command line; see cli.h. Dispatch only: each command lives with its kind
 * (cli_home.c, cli_books.c, cli_node.c, cli_send.c, testnet.c), shares one option parser
 * (cli_common.c), and prints through render.c.
 */
#include "cli.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "envelope.h"

/* ---- dispatch ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    const char *full_name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"init", "corridor init", cmd_init, "create a node's home, keys and config; print its card"},
    {"card", "corridor card", cmd_card, "print this node's peer card (--history: its keys)"},
    {"peer", "corridor peer", cmd_peer, "peer add CARD [--limit CCY=AMOUNT]: trust a peer"},
    {"run", "corridor run", cmd_run, "run the node in the foreground until SIGTERM"},
    {"send", "corridor send", cmd_send, "submit a settlement (or --batch FILE); --wait for it"},
    {"status", "corridor status", cmd_status, "the running node's channels (--json)"},
    {"ledger", "corridor ledger", cmd_ledger, "positions, counts and settlements (--json)"},
    {"reconcile", "corridor reconcile", cmd_reconcile,
     "compare books with a peer's signed statement; --repair heals"},
    {"audit", "corridor audit", cmd_audit, "offline checks of one or more homes' books"},
    {"operations", "corridor operations", cmd_operations,
     "every action a person took on the books, with who and when (--json)"},
    {"return", "corridor return", cmd_return,
     "give back all or part of a settled payment (pacs.004); the payer accepts or refuses"},
    {"fx", "corridor fx", cmd_fx,
     "trade one currency for another with a peer, both legs or neither (PvP)"},
    {"cycle", "corridor cycle", cmd_cycle,
     "close|settle|list: co-signed net positions with a peer, and their net settlement"},
    {"setoff", "corridor setoff", cmd_setoff,
     "propose|list: take one amount off every debt of a ring of banks, all or nothing"},
    {"cancel", "corridor cancel", cmd_cancel,
     "ask a pending payment back (camt.056); the payee cancels it if it still holds it"},
    {"review", "corridor review", cmd_review,
     "review list|accept|reject: the incoming payments held for a person"},
    {"key", "corridor key", cmd_key,
     "key rotate: the running node announces a new signing key to every peer"},
    {"testnet", "corridor testnet", cmd_testnet,
     "up|status|down|audit: a network of nodes on this machine in one command"},
};

/* The program's version and the wire formats it speaks (PROTOCOL.md section 1.8). */
static void print_version(void)
{
    printf("corridor %s\nwire format versions %d to %d (Inner.version); ledger schema %d\n",
           CORRIDOR_VERSION, INNER_VERSION_MIN, INNER_VERSION_MAX, LEDGER_SCHEMA_VERSION);
}

static void print_help(void)
{
    printf("usage: corridor COMMAND [--home DIR] [options]\n\n"
           "Corridor: bilateral, signed and encrypted settlement messaging between banks.\n"
           "Every command takes --home DIR (default $%s, else %s) and --help.\n\n"
           "commands:\n",
           HOME_ENV, HOME_DEFAULT);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        printf("  %-8s %s\n", commands[i].name, commands[i].summary);
    }
    printf("\nexit codes: 0 ok, 1 negative answer, 2 usage or bad input, 3 node not running,\n"
           "            4 timed out, 5 internal or storage error\n");
}

int cli_main(int argc, char **argv)
{
    assert(argc >= 1 && argv != NULL);
    if (argc < 2) {
        complain("no command given; see corridor --help");
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help();
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        print_version();
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            cli_set_command(commands[i].full_name);
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    complain("unknown command '%s'; see corridor --help", argv[1]);
    return EXIT_USAGE;
}
