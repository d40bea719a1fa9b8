/* Log lines on stderr; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

size_t log_escape(const char *text, char *out, size_t out_size)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    if (out_size == 0) {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        bool plain = *p >= 0x20 && *p < 0x7f && *p != '\\';
        size_t need = plain ? 1 : 4;
        if (n + need >= out_size) {
            break; /* cut whole escapes only */
        }
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 0x0f];
        }
    }
    out[n] = '\0';
    return n;
}

static int64_t wall_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t (*log_clock)(void) = wall_clock_ms;

void log_set_clock(int64_t (*now_ms)(void))
{
    log_clock = now_ms != NULL ? now_ms : wall_clock_ms;
}

void log_event(const char *node, const char *peer, const char *uetr, const char *fmt, ...)
{
    int64_t now_ms = log_clock();
    time_t seconds = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    char raw[1024];
    int n = snprintf(raw, sizeof raw, "%s", node != NULL ? node : "corridor");
    if (peer != NULL && n > 0 && (size_t)n < sizeof raw) {
        n += snprintf(raw + n, sizeof raw - (size_t)n, " peer=%s", peer);
    }
    if (uetr != NULL && n > 0 && (size_t)n < sizeof raw) {
        n += snprintf(raw + n, sizeof raw - (size_t)n, " uetr=%s", uetr);
    }
    if (n > 0 && (size_t)n < sizeof raw - 2) {
        raw[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw + n, sizeof raw - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* whatever a peer put in a field (a UETR, a status, a currency) stays on this one line */
    char line[4 * sizeof raw];
    log_escape(raw, line, sizeof line);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(now_ms % 1000), line);
}
