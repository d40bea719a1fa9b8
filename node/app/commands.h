/*
 * The `corridor` commands, one function each (argv[0] is the command's name); cli.c
 * dispatches to them. Each returns an exit code (include/corridor/exit.h).
 */
#ifndef CORRIDOR_COMMANDS_H
#define CORRIDOR_COMMANDS_H

#define DEFAULT_CURRENCIES "RUB,IRR"

/* cli_home.c: a node's home and whom it trusts */
int cmd_init(int argc, char **argv);
int cmd_card(int argc, char **argv);
int cmd_peer(int argc, char **argv);

/* cli_books.c: reading the books, node running or not */
int cmd_ledger(int argc, char **argv);
int cmd_operations(int argc, char **argv);
int cmd_audit(int argc, char **argv);

/* cli_node.c: the node and what it is asked */
int cmd_run(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_reconcile(int argc, char **argv);
int cmd_key(int argc, char **argv);

/* cli_send.c: submitting settlements */
int cmd_send(int argc, char **argv);

/* cli_return.c: returning a settled payment */
int cmd_return(int argc, char **argv);
int cmd_fx(int argc, char **argv);

/* cli_cancel.c: asking a payment back */
int cmd_cancel(int argc, char **argv);

/* cli_cycle.c: settlement cycles and net settlement */
int cmd_cycle(int argc, char **argv);

/* cli_setoff.c: multilateral set-off */
int cmd_setoff(int argc, char **argv);

/* cli_review.c: payments held for a person */
int cmd_review(int argc, char **argv);

/* testnet.c: a local network of nodes */
int cmd_testnet(int argc, char **argv);

#endif
