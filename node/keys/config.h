/*
 * The node's configuration file (corridor.conf in its home): who it is, where it listens,
 * which currencies it accepts, and the peers it trusts with the caps it grants them.
 *
 * INI, read with libinih. Debian's libinih reads at most 200 bytes per line and would split
 * a longer one silently, so every line is checked first and a longer one is refused. Every
 * key is validated; an unknown key or section is an error, not a silent default. The file is
 * written whole and atomically (fsutil), so a crash leaves the old or the new file.
 *
 *   [node]
 *   name = BKRURUMM
 *   listen = tcp://127.0.0.1:7001
 *   currencies = RUB,IRR
 *   checkpoint_every = 10000       (optional: a checkpoint after this many sequenced messages
 *   checkpoint_interval_s = 600     on a channel, both ways, or this long, if sooner)
 *   cycle_every = 5000              (optional, PROTOCOL.md 3.11: a settlement cycle closed
 *   cycle_at = 18:00                 after this many settlements final since the last close,
 *                                    and once a day at this UTC time; for every peer)
 *   screen_list = sanctions.txt     (optional, PROTOCOL.md 3.8.2: parties refused RR04)
 *   screen_program = screen.sh      (optional: incoming payments held for its verdict,
 *   screen_timeout_ms = 5000         given this long to answer)
 *   [peer BMJIIRTH]
 *   endpoint = tcp://127.0.0.1:7002
 *   sign = <hex>  box = <hex>  curve = <z85>      (one per line)
 *   limit_minor.RUB = 100000000                    (net debit cap granted, minor units)
 *   fx_band.RUB_IRR = 440..460                     (FX trades of this peer's accepted inside:
 *                                                   IRR per RUB, whichever side pays which)
 *   cycle_every = 100  cycle_at = 06:30            (optional: this peer's own, over [node]'s)
 *
 * A zeroed config_t is valid and means "not set" for every optional key; that is why cycle_at
 * is kept as minutes plus one (0: off) rather than as -1 (read it with config_cycle_at_min).
 */
#ifndef CORRIDOR_CONFIG_H
#define CORRIDOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corridor/limits.h"
#include "identity.h"

#define CONFIG_FILE      "corridor.conf"
#define CONFIG_FILE_MODE 0600

#define CONFIG_CHECKPOINT_EVERY_DEFAULT    10000
#define CONFIG_CHECKPOINT_INTERVAL_DEFAULT 600
#define CONFIG_CHECKPOINT_EVERY_MAX        1000000000
#define CONFIG_CHECKPOINT_INTERVAL_MAX     (366 * 24 * 3600)
#define CONFIG_SCREEN_TIMEOUT_MS_DEFAULT   5000
#define CONFIG_SCREEN_TIMEOUT_MS_MAX       600000
#define CONFIG_CYCLE_EVERY_MAX             1000000000
#define CONFIG_CYCLE_AT_MIN_MAX            (24 * 60 - 1) /* 23:59 */

/* A net debit cap this node grants a peer in one currency. */
typedef struct {
    char currency[CORRIDOR_CURRENCY_LEN + 1]; /* ISO 4217 code */
    int64_t minor;                            /* cap in minor units, >= 0 */
} config_limit_t;

#define CONFIG_FX_BANDS_MAX  16
#define CONFIG_FX_BAND_SCALE 1000000LL /* band bounds are kept in millionths */

/* The rates at which this node accepts a peer's FX trades in a pair (PROTOCOL.md 3.10.4): units
 * of quote per unit of base, from low to high inclusive, in millionths. */
typedef struct {
    char base[CORRIDOR_CURRENCY_LEN + 1];
    char quote[CORRIDOR_CURRENCY_LEN + 1];
    int64_t low;  /* > 0 */
    int64_t high; /* >= low */
} config_fx_band_t;

/* A trusted peer. */
typedef struct {
    peer_card_t card;                               /* its name, endpoint and public keys */
    size_t limits_count;                            /* entries used in limits */
    config_limit_t limits[CORRIDOR_CURRENCIES_MAX]; /* caps granted; absent currency = 0 */
    size_t fx_bands_count;                          /* entries used in fx_bands */
    config_fx_band_t fx_bands[CONFIG_FX_BANDS_MAX]; /* no band for a pair: held for review */
    uint32_t cycle_every;                           /* cycle_every for this peer; 0: [node]'s */
    int32_t cycle_at_min_plus1; /* cycle_at for this peer, minutes after 00:00 UTC plus one;
                                   0: [node]'s */
} config_peer_t;

typedef struct {
    char name[CORRIDOR_NAME_LEN_MAX + 1];              /* this node's code */
    char listen[CORRIDOR_ENDPOINT_LEN_MAX + 1];        /* endpoint the inbound socket binds */
    char listen_stream[CORRIDOR_ENDPOINT_LEN_MAX + 1]; /* where the stream comes; "": listen */
    size_t currencies_count;                           /* entries used in currencies */
    char currencies[CORRIDOR_CURRENCIES_MAX][CORRIDOR_CURRENCY_LEN + 1]; /* accepted */
    size_t peers_count;                                                  /* entries used in peers */
    config_peer_t peers[CORRIDOR_PEERS_MAX]; /* trusted peers, in file order */
    uint32_t checkpoint_every;      /* sequenced messages between checkpoints; 0: the default */
    uint32_t checkpoint_interval_s; /* seconds between checkpoints, if sooner; 0: the default */
    char screen_list[CORRIDOR_PATH_LEN_MAX + 1];    /* screening list file ("": none), relative
                                                       paths from the home */
    char screen_program[CORRIDOR_PATH_LEN_MAX + 1]; /* screening program ("": none) */
    uint32_t screen_timeout_ms;                     /* its time to answer; 0: the default */
    uint32_t cycle_every;       /* settlements final between automatic cycle closes; 0: off */
    int32_t cycle_at_min_plus1; /* daily automatic cycle close, minutes after 00:00 UTC plus
                                   one; 0: off */
} config_t;

/* screen_timeout_ms with its default. */
uint32_t config_screen_timeout_ms(const config_t *config);

/* checkpoint_every and checkpoint_interval_s, with their defaults. */
uint32_t config_checkpoint_every(const config_t *config);
uint32_t config_checkpoint_interval_s(const config_t *config);

/* When a channel's settlement cycle is closed by itself (PROTOCOL.md 3.11): the [peer X]
 * section's cycle_every and cycle_at where it sets them, else [node]'s (`peer` NULL or not a
 * configured peer: [node]'s). cycle_every: settlements final since the last close, 0 when
 * off. cycle_at: minutes after midnight UTC, 0 to CONFIG_CYCLE_AT_MIN_MAX, -1 when off. */
uint32_t config_cycle_every(const config_t *config, const char *peer);
int32_t config_cycle_at_min(const config_t *config, const char *peer);

/* How a config function fails: CONFIG_OK (0) or why, and one line in `err` saying what and
 * where where the function takes one. */
typedef enum {
    CONFIG_OK = 0,
    CONFIG_E_IO,      /* the file could not be read or written (errno says why) */
    CONFIG_E_INVALID, /* the text is not a valid config (err says what and where) */
    CONFIG_E_NOMEM,   /* out of memory */
    CONFIG_E_FULL,    /* a table is full (caps of one peer) */
} config_err_t;

const char *config_strerror(config_err_t err);

/* A zeroed config on the heap (it is large); NULL when out of memory. */
config_t *config_new(void);
void config_destroy(config_t **self_p);

/* Loads and validates a config file. On error writes one line saying what is wrong and where
 * into err (e.g. "corridor.conf:7: sign: not 64 hex digits"). */
config_err_t config_load(const char *path, config_t **out, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Parses config text (the part of config_load after reading the file). */
config_err_t config_parse(const char *text, const char *origin, config_t *config, char *err,
                          size_t err_size) __attribute__((warn_unused_result));

/* Serialises the config (the exact text config_save writes). Returns the length, or 0 if it
 * does not fit in out_size. */
size_t config_format(const config_t *config, char *out, size_t out_size);

/* Writes the config atomically with mode 0600 (errno says why it could not). */
config_err_t config_save(const config_t *config, const char *path)
    __attribute__((warn_unused_result));

/* Parses a comma-separated currency list ("RUB,IRR") into config->currencies. Refuses unknown
 * codes, duplicates, empty items and more than CORRIDOR_CURRENCIES_MAX. */
config_err_t config_set_currencies(config_t *config, const char *list, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* The peer named `name`, or NULL. */
config_peer_t *config_find_peer(config_t *config, const char *name);
const config_peer_t *config_find_peer_const(const config_t *config, const char *name);

/* Whether the node accepts `currency`. */
bool config_accepts(const config_t *config, const char *currency);

/* Sets (or replaces) the cap granted to a peer in one currency. */
config_err_t config_peer_set_limit(config_peer_t *peer, const char *currency, int64_t minor);

/* Parses a band's value "LOW..HIGH" (decimals up to 6 places, at most 9 whole digits,
 * 0 < LOW <= HIGH) into band->low and high. NULL when valid, else what is wrong. */
const char *config_fx_band_parse(const char *text, config_fx_band_t *band);

/* Writes a band's value as config_fx_band_parse reads it ("440..460.5"). */
void config_fx_band_format(const config_fx_band_t *band, char *out, size_t out_size);

/* The cap granted to a peer in one currency; 0 if none is configured. */
int64_t config_peer_limit(const config_peer_t *peer, const char *currency);

#endif
