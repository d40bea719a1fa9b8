/*
 * Log lines: one line on stderr per event that matters, with time, node, peer and UETR, so
 * that `grep UETR` over the logs of every node tells a payment's story.
 */
#ifndef CORRIDOR_LOG_H
#define CORRIDOR_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The clock log lines are stamped with (milliseconds since the epoch): the wall clock unless
 * set; a program that runs on a simulated clock sets its own, so its logs replay too. NULL
 * restores the wall clock. */
void log_set_clock(int64_t (*now_ms)(void));

/* Writes "2026-11-27T17:00:00.123Z NODE peer=PEER uetr=UETR message". peer and uetr may be
 * NULL (left out). Every byte outside printable ASCII, and the backslash, is written as \xNN:
 * text a peer chose can neither end the line nor forge another. */
void log_event(const char *node, const char *peer, const char *uetr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copies text into out (NUL-terminated, cut at a whole character) with the escapes above;
 * returns the length written. */
size_t log_escape(const char *text, char *out, size_t out_size);

#endif
