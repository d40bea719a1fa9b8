/* The node's configuration file; see config.h. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "fsutil.h"
#include "validate.h"

#define PEER_SECTION_PREFIX "peer "
#define LIMIT_KEY_PREFIX    "limit_minor."
#define FX_BAND_KEY_PREFIX  "fx_band."

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

config_t *config_new(void)
{
    return calloc(1, sizeof(config_t));
}

uint32_t config_checkpoint_every(const config_t *config)
{
    return config->checkpoint_every != 0 ? config->checkpoint_every
                                         : CONFIG_CHECKPOINT_EVERY_DEFAULT;
}

uint32_t config_screen_timeout_ms(const config_t *config)
{
    return config->screen_timeout_ms != 0 ? config->screen_timeout_ms
                                          : CONFIG_SCREEN_TIMEOUT_MS_DEFAULT;
}

uint32_t config_checkpoint_interval_s(const config_t *config)
{
    return config->checkpoint_interval_s != 0 ? config->checkpoint_interval_s
                                              : CONFIG_CHECKPOINT_INTERVAL_DEFAULT;
}

uint32_t config_cycle_every(const config_t *config, const char *peer)
{
    assert(config != NULL);
    const config_peer_t *p = peer != NULL ? config_find_peer_const(config, peer) : NULL;
    uint32_t every = p != NULL && p->cycle_every != 0 ? p->cycle_every : config->cycle_every;
    assert(every <= CONFIG_CYCLE_EVERY_MAX);
    return every;
}

int32_t config_cycle_at_min(const config_t *config, const char *peer)
{
    assert(config != NULL);
    const config_peer_t *p = peer != NULL ? config_find_peer_const(config, peer) : NULL;
    int32_t plus1 = p != NULL && p->cycle_at_min_plus1 != 0 ? p->cycle_at_min_plus1
                                                            : config->cycle_at_min_plus1;
    assert(plus1 >= 0 && plus1 <= CONFIG_CYCLE_AT_MIN_MAX + 1);
    return plus1 - 1;
}

void config_destroy(config_t **self_p)
{
    assert(self_p != NULL);
    free(*self_p);
    *self_p = NULL;
}

config_peer_t *config_find_peer(config_t *config, const char *name)
{
    assert(config != NULL && name != NULL);
    for (size_t i = 0; i < config->peers_count; i++) {
        if (strcmp(config->peers[i].card.name, name) == 0) {
            return &config->peers[i];
        }
    }
    return NULL;
}

const config_peer_t *config_find_peer_const(const config_t *config, const char *name)
{
    return config_find_peer((config_t *)config, name);
}

bool config_accepts(const config_t *config, const char *currency)
{
    assert(config != NULL && currency != NULL);
    for (size_t i = 0; i < config->currencies_count; i++) {
        if (strcmp(config->currencies[i], currency) == 0) {
            return true;
        }
    }
    return false;
}

const char *config_strerror(config_err_t err)
{
    switch (err) {
    case CONFIG_OK:
        return "ok";
    case CONFIG_E_IO:
        return "the config file could not be read or written";
    case CONFIG_E_INVALID:
        return "the config is not valid";
    case CONFIG_E_NOMEM:
        return "out of memory";
    case CONFIG_E_FULL:
        return "a table of the config is full";
    }
    return "unknown error";
}

config_err_t config_peer_set_limit(config_peer_t *peer, const char *currency, int64_t minor)
{
    assert(peer != NULL && currency_find(currency) != NULL && minor >= 0);
    for (size_t i = 0; i < peer->limits_count; i++) {
        if (strcmp(peer->limits[i].currency, currency) == 0) {
            peer->limits[i].minor = minor;
            return CONFIG_OK;
        }
    }
    if (peer->limits_count == CORRIDOR_CURRENCIES_MAX) {
        return CONFIG_E_FULL;
    }
    config_limit_t *l = &peer->limits[peer->limits_count++];
    snprintf(l->currency, sizeof l->currency, "%s", currency);
    l->minor = minor;
    return CONFIG_OK;
}

int64_t config_peer_limit(const config_peer_t *peer, const char *currency)
{
    assert(peer != NULL && currency != NULL);
    for (size_t i = 0; i < peer->limits_count; i++) {
        if (strcmp(peer->limits[i].currency, currency) == 0) {
            return peer->limits[i].minor;
        }
    }
    return 0;
}

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (err == NULL || err_size == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

config_err_t config_set_currencies(config_t *config, const char *list, char *err, size_t err_size)
{
    assert(config != NULL && list != NULL);
    config->currencies_count = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char code[8];
        if (len == 0 || len >= sizeof code) {
            set_err(err, err_size, "currencies: '%.*s' is not a currency code",
                    (int)(len < 8 ? len : 8), p);
            return CONFIG_E_INVALID;
        }
        memcpy(code, p, len);
        code[len] = '\0';
        if (currency_find(code) == NULL) {
            set_err(err, err_size, "currencies: unknown currency %s", code);
            return CONFIG_E_INVALID;
        }
        if (config_accepts(config, code)) {
            set_err(err, err_size, "currencies: %s is listed twice", code);
            return CONFIG_E_INVALID;
        }
        if (config->currencies_count == CORRIDOR_CURRENCIES_MAX) {
            set_err(err, err_size, "currencies: more than %d", CORRIDOR_CURRENCIES_MAX);
            return CONFIG_E_INVALID;
        }
        memcpy(config->currencies[config->currencies_count++], currency_find(code)->code,
               CORRIDOR_CURRENCY_LEN + 1);
        if (comma == NULL) {
            return CONFIG_OK;
        }
        p = comma + 1;
    }
}

/* State carried through libinih's callbacks. */
typedef struct {
    config_t *config;
    char *err;
    size_t err_size;
    config_peer_t *peer;  /* the [peer X] section being read, or NULL */
    unsigned peer_fields; /* which card fields the current peer has given */
    bool in_node;         /* inside [node] */
    char section[CORRIDOR_CONFIG_LINE_LEN_MAX + 1]; /* the section of the previous key */
    const char *cursor;                             /* the text not yet handed to libinih */
    int lineno;   /* the line libinih is reading (its handler is not told) */
    int err_line; /* the line of the error in err, 0 if none */
} parse_state_t;

/* libinih reader over a string that counts lines, like fgets. */
static char *read_line(char *str, int num, void *stream)
{
    parse_state_t *st = stream;
    if (*st->cursor == '\0' || num <= 1) {
        return NULL;
    }
    size_t n = 0;
    while (n < (size_t)num - 1 && st->cursor[n] != '\0') {
        if (st->cursor[n++] == '\n') {
            break;
        }
    }
    memcpy(str, st->cursor, n);
    str[n] = '\0';
    st->cursor += n;
    st->lineno++;
    return str;
}

/* Parses one bound: whole digits (at most 9), then optionally '.' and 1 to 6 digits. */
static bool parse_bound(const char *text, size_t len, int64_t *millionths)
{
    int64_t whole = 0, frac = 0;
    size_t i = 0, whole_digits = 0, frac_digits = 0;
    for (; i < len && text[i] >= '0' && text[i] <= '9'; i++, whole_digits++) {
        whole = whole * 10 + (text[i] - '0');
        if (whole_digits >= 9) {
            return false;
        }
    }
    if (whole_digits == 0) {
        return false;
    }
    if (i < len && text[i] == '.') {
        for (i++; i < len && text[i] >= '0' && text[i] <= '9'; i++, frac_digits++) {
            if (frac_digits >= 6) {
                return false;
            }
            frac = frac * 10 + (text[i] - '0');
        }
        if (frac_digits == 0) {
            return false;
        }
    }
    if (i != len) {
        return false;
    }
    for (size_t d = frac_digits; d < 6; d++) {
        frac *= 10;
    }
    *millionths = whole * CONFIG_FX_BAND_SCALE + frac;
    return true;
}

const char *config_fx_band_parse(const char *text, config_fx_band_t *band)
{
    assert(text != NULL && band != NULL);
    const char *dots = strstr(text, "..");
    int64_t low = 0, high = 0;
    if (dots == NULL || !parse_bound(text, (size_t)(dots - text), &low) ||
        !parse_bound(dots + 2, strlen(dots + 2), &high)) {
        return "not LOW..HIGH (decimals, up to 6 places, at most 9 whole digits)";
    }
    if (low <= 0 || high < low) {
        return "not 0 < LOW <= HIGH";
    }
    band->low = low;
    band->high = high;
    return NULL;
}

/* Writes millionths as a decimal without trailing zeros ("440", "440.5"). */
static void format_millionths(int64_t v, char *out, size_t out_size)
{
    int64_t whole = v / CONFIG_FX_BAND_SCALE, frac = v % CONFIG_FX_BAND_SCALE;
    if (frac == 0) {
        snprintf(out, out_size, "%lld", (long long)whole);
        return;
    }
    char digits[8];
    snprintf(digits, sizeof digits, "%06lld", (long long)frac);
    for (size_t n = strlen(digits); n > 0 && digits[n - 1] == '0'; n--) {
        digits[n - 1] = '\0';
    }
    snprintf(out, out_size, "%lld.%s", (long long)whole, digits);
}

void config_fx_band_format(const config_fx_band_t *band, char *out, size_t out_size)
{
    char low[32], high[32];
    format_millionths(band->low, low, sizeof low);
    format_millionths(band->high, high, sizeof high);
    snprintf(out, out_size, "%s..%s", low, high);
}

/* Applies `fx_band.BASE_QUOTE = LOW..HIGH`: NULL, or what is wrong. */
static const char *peer_fx_band(config_peer_t *peer, const char *pair, const char *value)
{
    char base[8] = "", quote[8] = "";
    const char *sep = strchr(pair, '_');
    if (sep == NULL || sep - pair != CORRIDOR_CURRENCY_LEN ||
        strlen(sep + 1) != CORRIDOR_CURRENCY_LEN) {
        return "not fx_band.CCY1_CCY2";
    }
    memcpy(base, pair, CORRIDOR_CURRENCY_LEN);
    memcpy(quote, sep + 1, CORRIDOR_CURRENCY_LEN);
    if (currency_find(base) == NULL || currency_find(quote) == NULL) {
        return "unknown currency";
    }
    if (strcmp(base, quote) == 0) {
        return "a pair of one currency";
    }
    for (size_t i = 0; i < peer->fx_bands_count; i++) {
        const config_fx_band_t *b = &peer->fx_bands[i];
        if ((strcmp(b->base, base) == 0 && strcmp(b->quote, quote) == 0) ||
            (strcmp(b->base, quote) == 0 && strcmp(b->quote, base) == 0)) {
            return "given twice (a band applies to its pair either way round)";
        }
    }
    if (peer->fx_bands_count == CONFIG_FX_BANDS_MAX) {
        return "too many bands";
    }
    config_fx_band_t band;
    memset(&band, 0, sizeof band);
    const char *wrong = config_fx_band_parse(value, &band);
    if (wrong != NULL) {
        return wrong;
    }
    memcpy(band.base, base, sizeof band.base);
    memcpy(band.quote, quote, sizeof band.quote);
    peer->fx_bands[peer->fx_bands_count++] = band;
    return NULL;
}

/* Whether `key` is one of the settlement cycle keys, read by cycle_field in [node] and in
 * [peer X] alike. */
static bool is_cycle_key(const char *key)
{
    return strcmp(key, "cycle_every") == 0 || strcmp(key, "cycle_at") == 0;
}

/* Applies `cycle_every = N` (1 to CONFIG_CYCLE_EVERY_MAX) or `cycle_at = HH:MM` (UTC, exactly
 * two digits each) to the fields of [node] or of one [peer X]. NULL, or what is wrong. */
static const char *cycle_field(const char *key, const char *value, uint32_t *every,
                               int32_t *at_min_plus1)
{
    assert(is_cycle_key(key));
    if (strcmp(key, "cycle_every") == 0) {
        if (*every != 0) {
            return "given twice";
        }
        char *end = NULL;
        errno = 0;
        unsigned long long v = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
        if (errno != 0 || end == NULL || *end != '\0' || v < 1 || v > CONFIG_CYCLE_EVERY_MAX) {
            return "not a whole number from 1 to " STRINGIFY(CONFIG_CYCLE_EVERY_MAX);
        }
        *every = (uint32_t)v;
        return NULL;
    }
    if (*at_min_plus1 != 0) {
        return "given twice";
    }
    bool digits = strlen(value) == 5 && value[2] == ':';
    for (size_t i = 0; digits && i < 5; i++) {
        digits = i == 2 || (value[i] >= '0' && value[i] <= '9');
    }
    int hours = digits ? (value[0] - '0') * 10 + (value[1] - '0') : -1;
    int minutes = digits ? (value[3] - '0') * 10 + (value[4] - '0') : -1;
    if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59) {
        return "not a time of day HH:MM in UTC, from 00:00 to 23:59";
    }
    *at_min_plus1 = (int32_t)(hours * 60 + minutes + 1);
    assert(*at_min_plus1 >= 1 && *at_min_plus1 <= CONFIG_CYCLE_AT_MIN_MAX + 1);
    return NULL;
}

/* Applies one key of a [peer X] section. Returns NULL, or what is wrong with the value. */
static const char *peer_field(config_peer_t *peer, const char *key, const char *value,
                              unsigned *fields)
{
    if (is_cycle_key(key)) {
        return cycle_field(key, value, &peer->cycle_every, &peer->cycle_at_min_plus1);
    }
    if (strncmp(key, FX_BAND_KEY_PREFIX, strlen(FX_BAND_KEY_PREFIX)) == 0) {
        return peer_fx_band(peer, key + strlen(FX_BAND_KEY_PREFIX), value);
    }
    if (strncmp(key, LIMIT_KEY_PREFIX, strlen(LIMIT_KEY_PREFIX)) == 0) {
        const currency_t *c = currency_find(key + strlen(LIMIT_KEY_PREFIX));
        if (c == NULL) {
            return "unknown currency";
        }
        char *end = NULL;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < 0 || v > CORRIDOR_AMOUNT_MINOR_MAX) {
            return "not a whole number of minor units from 0 to the maximum amount";
        }
        if (value[0] == '+') {
            return "not a plain whole number";
        }
        if (config_peer_limit(peer, c->code) != 0) {
            return "given twice";
        }
        if (config_peer_set_limit(peer, c->code, (int64_t)v) != 0) {
            return "too many limits";
        }
        return NULL;
    }
    unsigned bit = card_field_bit(key);
    if (bit == 0 || strcmp(key, "name") == 0) {
        return "unknown key";
    }
    if ((*fields & bit) != 0) {
        return "given twice";
    }
    card_err_t rc = card_set_field(&peer->card, key, value);
    if (rc != CARD_OK) {
        return card_strerror(rc);
    }
    *fields |= bit;
    return NULL;
}

static const char *node_field(config_t *config, const char *key, const char *value, char *err,
                              size_t err_size)
{
    if ((strcmp(key, "name") == 0 && config->name[0] != '\0') ||
        (strcmp(key, "listen") == 0 && config->listen[0] != '\0') ||
        (strcmp(key, "listen_stream") == 0 && config->listen_stream[0] != '\0') ||
        (strcmp(key, "currencies") == 0 && config->currencies_count > 0) ||
        (strcmp(key, "checkpoint_every") == 0 && config->checkpoint_every != 0) ||
        (strcmp(key, "checkpoint_interval_s") == 0 && config->checkpoint_interval_s != 0) ||
        (strcmp(key, "screen_list") == 0 && config->screen_list[0] != '\0') ||
        (strcmp(key, "screen_program") == 0 && config->screen_program[0] != '\0') ||
        (strcmp(key, "screen_timeout_ms") == 0 && config->screen_timeout_ms != 0)) {
        return "given twice";
    }
    if (strcmp(key, "name") == 0) {
        if (node_code_check(value) != VALID_OK) {
            return "not a node code (4-11 of A-Z, 0-9, starting with a letter)";
        }
        snprintf(config->name, sizeof config->name, "%s", value);
    } else if (strcmp(key, "listen") == 0 || strcmp(key, "listen_stream") == 0) {
        if (!endpoint_valid(value)) {
            return "not tcp://HOST:PORT or ipc://PATH";
        }
        char *field = strcmp(key, "listen") == 0 ? config->listen : config->listen_stream;
        snprintf(field, sizeof config->listen, "%s", value);
    } else if (strcmp(key, "currencies") == 0) {
        if (config_set_currencies(config, value, err, err_size) != 0) {
            return err;
        }
    } else if (strcmp(key, "checkpoint_every") == 0 || strcmp(key, "checkpoint_interval_s") == 0) {
        bool every = strcmp(key, "checkpoint_every") == 0;
        uint32_t most = every ? CONFIG_CHECKPOINT_EVERY_MAX : CONFIG_CHECKPOINT_INTERVAL_MAX;
        char *end = NULL;
        errno = 0;
        unsigned long long v = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
        if (errno != 0 || end == NULL || *end != '\0' || v < 1 || v > most) {
            snprintf(err, err_size, "not a whole number from 1 to %u", most);
            return err;
        }
        *(every ? &config->checkpoint_every : &config->checkpoint_interval_s) = (uint32_t)v;
    } else if (is_cycle_key(key)) {
        return cycle_field(key, value, &config->cycle_every, &config->cycle_at_min_plus1);
    } else if (strcmp(key, "screen_list") == 0 || strcmp(key, "screen_program") == 0) {
        char *field =
            strcmp(key, "screen_list") == 0 ? config->screen_list : config->screen_program;
        /* config_format writes `key = value`: the line must fit when the file is written again */
        size_t most = CORRIDOR_CONFIG_LINE_LEN_MAX - strlen(key) - strlen(" = ");
        if (value[0] == '\0' || strlen(value) > most || text_check(value, most) != VALID_OK ||
            strpbrk(value, ";#") != NULL) { /* written again, `= ;` would read as a comment */
            snprintf(err, err_size, "not a file path of at most %zu bytes without ; or #", most);
            return err;
        }
        snprintf(field, sizeof config->screen_list, "%s", value);
    } else if (strcmp(key, "screen_timeout_ms") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
        if (errno != 0 || end == NULL || *end != '\0' || v < 1 ||
            v > CONFIG_SCREEN_TIMEOUT_MS_MAX) {
            snprintf(err, err_size, "not a whole number from 1 to %u",
                     CONFIG_SCREEN_TIMEOUT_MS_MAX);
            return err;
        }
        config->screen_timeout_ms = (uint32_t)v;
    } else {
        return "unknown key";
    }
    return NULL;
}

/* Checks that the peer section just finished has every card field. */
static bool peer_complete(parse_state_t *st, int lineno)
{
    if (st->peer != NULL && ((st->peer_fields | card_field_bit("name")) & CARD_FIELDS_REQUIRED) !=
                                CARD_FIELDS_REQUIRED) {
        if (lineno > 0) {
            set_err(st->err, st->err_size,
                    "line %d: [peer %s] needs endpoint, sign, box and curve before this line",
                    lineno, st->peer->card.name);
        } else {
            set_err(st->err, st->err_size,
                    "end of file: [peer %s] needs endpoint, sign, box and curve",
                    st->peer->card.name);
        }
        return false;
    }
    return true;
}

static bool begin_section(parse_state_t *st, const char *section, int lineno)
{
    st->err_line = lineno; /* for any error below */
    if (!peer_complete(st, lineno)) {
        return false;
    }
    st->peer = NULL;
    st->peer_fields = 0;
    st->in_node = strcmp(section, "node") == 0;
    if (st->in_node) {
        return true;
    }
    size_t prefix = strlen(PEER_SECTION_PREFIX);
    if (strncmp(section, PEER_SECTION_PREFIX, prefix) != 0) {
        set_err(st->err, st->err_size, "line %d: unknown section [%s]", lineno, section);
        return false;
    }
    const char *name = section + prefix;
    if (node_code_check(name) != VALID_OK) {
        set_err(st->err, st->err_size, "line %d: [peer %s]: not a node code", lineno, name);
        return false;
    }
    if (config_find_peer(st->config, name) != NULL || strcmp(name, st->config->name) == 0) {
        set_err(st->err, st->err_size, "line %d: [peer %s] appears twice or is this node", lineno,
                name);
        return false;
    }
    if (st->config->peers_count == CORRIDOR_PEERS_MAX) {
        set_err(st->err, st->err_size, "line %d: more than %d peers", lineno, CORRIDOR_PEERS_MAX);
        return false;
    }
    st->peer = &st->config->peers[st->config->peers_count++];
    snprintf(st->peer->card.name, sizeof st->peer->card.name, "%s", name);
    return true;
}

/* libinih callback: one key = value. Returns 0 to stop parsing on the first error. */
static int on_entry(void *user, const char *section, const char *key, const char *value)
{
    parse_state_t *st = user;
    int lineno = st->lineno;
    if (st->err[0] != '\0') {
        return 0; /* libinih goes on after an error; the first one is the one to report */
    }
    /* Debian's libinih is built without INI_CALL_HANDLER_ON_NEW_SECTION: a section begins
     * when a key arrives under a new name (a section with no keys is ignored). */
    if (strcmp(section, st->section) != 0) {
        snprintf(st->section, sizeof st->section, "%s", section);
        if (!begin_section(st, section, lineno)) {
            return 0;
        }
    }
    char why[256];
    const char *problem = NULL;
    if (st->in_node) {
        problem = node_field(st->config, key, value, why, sizeof why);
    } else if (st->peer != NULL) {
        problem = peer_field(st->peer, key, value, &st->peer_fields);
    } else {
        problem = "outside any section";
    }
    if (problem != NULL) {
        set_err(st->err, st->err_size, "line %d: %s: %s", lineno, key, problem);
        st->err_line = lineno;
        return 0;
    }
    return 1;
}

/* Refuses lines libinih would split. Returns the 1-based number of the first long line, or 0. */
static int first_long_line(const char *text)
{
    int lineno = 1;
    size_t len = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n') {
            lineno++;
            len = 0;
        } else if (++len > CORRIDOR_CONFIG_LINE_LEN_MAX) {
            return lineno;
        }
    }
    return 0;
}

config_err_t config_parse(const char *text, const char *origin, config_t *config, char *err,
                          size_t err_size)
{
    assert(text != NULL && origin != NULL && config != NULL);
    memset(config, 0, sizeof *config);
    char line_err[512] = "";
    int long_line = first_long_line(text);
    if (long_line != 0) {
        set_err(err, err_size, "%s:%d: line longer than %d bytes", origin, long_line,
                CORRIDOR_CONFIG_LINE_LEN_MAX);
        return CONFIG_E_INVALID;
    }
    parse_state_t st = {
        .config = config, .err = line_err, .err_size = sizeof line_err, .cursor = text};
    int rc = ini_parse_stream(read_line, &st, on_entry, &st);
    if (rc == 0 && !peer_complete(&st, 0)) {
        rc = -1;
    }
    if (rc == 0 &&
        (config->name[0] == '\0' || config->listen[0] == '\0' || config->currencies_count == 0)) {
        snprintf(line_err, sizeof line_err, "[node] needs name, listen and currencies");
        rc = -1;
    }
    if (rc == 0 && strcmp(config->listen, config->listen_stream) == 0) {
        snprintf(line_err, sizeof line_err, "[node] listen_stream must differ from listen");
        rc = -1;
    }
    if (rc == 0 && config_find_peer(config, config->name) != NULL) {
        snprintf(line_err, sizeof line_err, "[peer %s] is this node itself", config->name);
        rc = -1;
    }
    if (rc != 0) {
        if (line_err[0] == '\0' || (rc > 0 && rc < st.err_line)) {
            /* libinih's own complaint (no '=', a bad section header) came first */
            snprintf(line_err, sizeof line_err, "line %d: not a key = value line", rc);
        }
        set_err(err, err_size, "%s: %s", origin, line_err);
        memset(config, 0, sizeof *config);
        return CONFIG_E_INVALID;
    }
    return CONFIG_OK;
}

config_err_t config_load(const char *path, config_t **out, char *err, size_t err_size)
{
    assert(path != NULL && out != NULL);
    *out = NULL;
    char *text = malloc(CORRIDOR_CONFIG_BYTES_MAX + 1);
    config_t *config = config_new();
    config_err_t rc = CONFIG_E_NOMEM;
    if (text == NULL || config == NULL) {
        set_err(err, err_size, "%s: out of memory", path);
        goto cleanup;
    }
    if (fs_read_bounded(path, text, CORRIDOR_CONFIG_BYTES_MAX) < 0) {
        rc = errno == EFBIG ? CONFIG_E_INVALID : CONFIG_E_IO;
        set_err(err, err_size, "%s: %s", path,
                errno == EFBIG ? "larger than 64 KiB" : strerror(errno));
        goto cleanup;
    }
    if ((rc = config_parse(text, path, config, err, err_size)) != CONFIG_OK) {
        goto cleanup;
    }
    *out = config;
    config = NULL;

cleanup:
    free(text);
    config_destroy(&config);
    return rc;
}

/* Appends formatted text at *used; sets *used past out_size on overflow. */
static void append(char *out, size_t out_size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *out, size_t out_size, size_t *used, const char *fmt, ...)
{
    if (*used >= out_size) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *used, out_size - *used, fmt, ap);
    va_end(ap);
    *used += n < 0 ? out_size : (size_t)n;
}

/* Writes the cycle keys that are set, as cycle_field reads them. */
static void append_cycle(char *out, size_t out_size, size_t *used, uint32_t every,
                         int32_t at_min_plus1)
{
    assert(at_min_plus1 >= 0 && at_min_plus1 <= CONFIG_CYCLE_AT_MIN_MAX + 1);
    if (every != 0) {
        append(out, out_size, used, "cycle_every = %u\n", every);
    }
    if (at_min_plus1 != 0) {
        int32_t minutes = at_min_plus1 - 1;
        append(out, out_size, used, "cycle_at = %02d:%02d\n", (int)(minutes / 60),
               (int)(minutes % 60));
    }
}

size_t config_format(const config_t *config, char *out, size_t out_size)
{
    assert(config != NULL && out != NULL);
    size_t used = 0;
    append(out, out_size, &used,
           "# Corridor node configuration, written by `corridor init` and `corridor peer add`.\n"
           "# limit_minor.CCY is the net debit cap granted to a peer, in minor units.\n"
           "[node]\nname = %s\nlisten = %s\ncurrencies = ",
           config->name, config->listen);
    for (size_t i = 0; i < config->currencies_count; i++) {
        append(out, out_size, &used, "%s%s", i > 0 ? "," : "", config->currencies[i]);
    }
    append(out, out_size, &used, "\n");
    if (config->listen_stream[0] != '\0') {
        append(out, out_size, &used, "listen_stream = %s\n", config->listen_stream);
    }
    if (config->checkpoint_every != 0) {
        append(out, out_size, &used, "checkpoint_every = %u\n", config->checkpoint_every);
    }
    if (config->checkpoint_interval_s != 0) {
        append(out, out_size, &used, "checkpoint_interval_s = %u\n", config->checkpoint_interval_s);
    }
    append_cycle(out, out_size, &used, config->cycle_every, config->cycle_at_min_plus1);
    if (config->screen_list[0] != '\0') {
        append(out, out_size, &used, "screen_list = %s\n", config->screen_list);
    }
    if (config->screen_program[0] != '\0') {
        append(out, out_size, &used, "screen_program = %s\n", config->screen_program);
    }
    if (config->screen_timeout_ms != 0) {
        append(out, out_size, &used, "screen_timeout_ms = %u\n", config->screen_timeout_ms);
    }
    for (size_t i = 0; i < config->peers_count; i++) {
        const config_peer_t *p = &config->peers[i];
        char sign_hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
        char box_hex[2 * crypto_box_PUBLICKEYBYTES + 1];
        sodium_bin2hex(sign_hex, sizeof sign_hex, p->card.sign_public, sizeof p->card.sign_public);
        sodium_bin2hex(box_hex, sizeof box_hex, p->card.box_public, sizeof p->card.box_public);
        append(out, out_size, &used, "\n[peer %s]\nendpoint = %s\n", p->card.name,
               p->card.endpoint);
        if (p->card.stream[0] != '\0') {
            append(out, out_size, &used, "stream = %s\n", p->card.stream);
        }
        append(out, out_size, &used, "sign = %s\nbox = %s\ncurve = %s\n", sign_hex, box_hex,
               p->card.curve_public);
        for (size_t j = 0; j < p->limits_count; j++) {
            append(out, out_size, &used, LIMIT_KEY_PREFIX "%s = %lld\n", p->limits[j].currency,
                   (long long)p->limits[j].minor);
        }
        for (size_t j = 0; j < p->fx_bands_count; j++) {
            char band[80];
            config_fx_band_format(&p->fx_bands[j], band, sizeof band);
            append(out, out_size, &used, FX_BAND_KEY_PREFIX "%s_%s = %s\n", p->fx_bands[j].base,
                   p->fx_bands[j].quote, band);
        }
        append_cycle(out, out_size, &used, p->cycle_every, p->cycle_at_min_plus1);
    }
    return used < out_size ? used : 0;
}

config_err_t config_save(const config_t *config, const char *path)
{
    assert(config != NULL && path != NULL);
    /* formatting adds spaces: a file that loads may format a little larger */
    char *text = malloc(2 * CORRIDOR_CONFIG_BYTES_MAX + 1);
    if (text == NULL) {
        errno = ENOMEM;
        return CONFIG_E_NOMEM;
    }
    config_err_t rc = CONFIG_E_IO;
    size_t len = config_format(config, text, 2 * CORRIDOR_CONFIG_BYTES_MAX + 1);
    if (len == 0) {
        errno = EFBIG;
    } else if (fs_write_atomic(path, text, len, CONFIG_FILE_MODE) == 0) {
        rc = CONFIG_OK;
    }
    int saved = errno;
    free(text);
    errno = saved;
    return rc;
}
