/*
 * Log lines: one line on stderr per event that matters, with time, node, peer and UETR, so
 * that `grep UETR` over the logs of every node tells a payment's story.
 */
#ifndef CORRIDOR_LOG_H
#define CORRIDOR_LOG_H

/* Writes "2026-11-27T17:00:00.123Z NODE peer=PEER uetr=UETR message". peer and uetr may be
 * NULL (left out). */
void log_event(const char *node, const char *peer, const char *uetr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
