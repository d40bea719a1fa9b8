/*
 * `corridor run`: one node's event loop.
 *
 * One thread, one zmq_poll over the inbound socket, the ZAP handler and the control socket,
 * with timers from the channels. Each turn:
 *   1. answer ZAP requests (connections wait for them);
 *   2. drain inbound frames (bounded), open and verify each, hand it to its peer's channel;
 *   3. read control requests (bounded);
 *   4. one ledger transaction for everything that changes the books: the settlements
 *      submitted, every message now next in order on every channel; then one commit;
 *   5. only after the commit: reply to `send`, acknowledge, transmit from the outbox.
 * SIGTERM/SIGINT stop the loop between turns: nothing is half-applied, the ledger closes
 * cleanly, the exit status is 0.
 */
#ifndef CORRIDOR_DAEMON_H
#define CORRIDOR_DAEMON_H

/* Runs the node of `home` until SIGTERM/SIGINT. Returns a process exit code (cli.h). */
int daemon_run(const char *home);

#endif
