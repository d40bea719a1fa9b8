/* What every command shares; see cli_common.h. */
#include "cli_common.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "validate.h"

enum { KEY_HOME = 0x10001, KEY_JSON, KEY_HELP };

static const char *command_name = "corridor";

void cli_set_command(const char *name)
{
    command_name = name;
}

void complain(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", command_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_parse(int argc, char **argv, const cli_spec_t *spec, cli_option_fn on_option, void *ctx,
              cli_args_t *args)
{
    assert(spec != NULL && spec->usage != NULL && spec->help != NULL && args != NULL);
    assert(spec->homes_max <= CLI_HOMES_MAX);
    struct option options[CLI_OPTIONS_MAX + 4];
    size_t n = 0;
    for (const struct option *o = spec->options; o != NULL && o->name != NULL; o++) {
        assert(n < CLI_OPTIONS_MAX && o->val < KEY_HOME && o->val != '?' && o->val != ':');
        assert(on_option != NULL);
        options[n++] = *o;
    }
    options[n++] = (struct option){"home", required_argument, NULL, KEY_HOME};
    if (spec->json) {
        options[n++] = (struct option){"json", no_argument, NULL, KEY_JSON};
    }
    options[n++] = (struct option){"help", no_argument, NULL, KEY_HELP};
    options[n] = (struct option){NULL, 0, NULL, 0};
    memset(args, 0, sizeof *args);
    opterr = 0; /* getopt's own messages would make a second line */
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        int rc = EXIT_OK;
        switch (opt) {
        case KEY_HOME:
            if (args->homes_count == (size_t)(spec->homes_max > 0 ? spec->homes_max : 1)) {
                complain("--home given more than %d time%s; usage: %s",
                         spec->homes_max > 0 ? spec->homes_max : 1, spec->homes_max > 1 ? "s" : "",
                         spec->usage);
                return EXIT_USAGE;
            }
            args->homes[args->homes_count++] = optarg;
            args->home = args->homes[0];
            break;
        case KEY_JSON:
            args->json = true;
            break;
        case KEY_HELP:
            printf("usage: %s\n%s", spec->usage, spec->help);
            args->help = true;
            return EXIT_OK;
        case '?':
        case ':': {
            const char *near = optind > 0 ? argv[optind - 1] : "?";
            complain("bad option or missing value near '%s'; usage: %s", near, spec->usage);
            return EXIT_USAGE;
        }
        default:
            rc = on_option(ctx, opt, optarg);
            break;
        }
        if (rc != EXIT_OK) {
            return rc;
        }
    }
    int left = argc - optind;
    if (left < spec->args_min || left > spec->args_max) {
        if (left > spec->args_max && spec->args_max == 0) {
            complain("unexpected argument '%s'; usage: %s", argv[optind], spec->usage);
        } else {
            complain("expected %d argument%s, got %d; usage: %s", spec->args_min,
                     spec->args_min == 1 ? "" : "s", left, spec->usage);
        }
        return EXIT_USAGE;
    }
    args->argc = left;
    args->argv = argv + optind;
    return EXIT_OK;
}

int cli_seconds(const char *option, const char *text, double max, int64_t *ms)
{
    char *end = NULL;
    double seconds = strtod(text, &end);
    if (end == text || *end != '\0' || !(seconds > 0) || seconds > max) {
        complain("%s %s: expected seconds, more than 0 and at most %g", option, text, max);
        return EXIT_USAGE;
    }
    *ms = (int64_t)(seconds * 1000);
    return EXIT_OK;
}

int cli_home(home_t *home, const char *option)
{
    if (home_resolve(home, option) != 0) {
        complain("home path is too long");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int cli_require_home(const home_t *home)
{
    if (access(home->config_path, R_OK) == 0) {
        return EXIT_OK;
    }
    if (errno == EACCES) {
        complain("%s: permission denied (the home belongs to another user? run corridor as "
                 "its owner)",
                 home->dir);
    } else {
        complain("no Corridor home at %s (no %s); create one with `corridor init`", home->dir,
                 CONFIG_FILE);
    }
    return EXIT_USAGE;
}

int cli_load_config(const home_t *home, config_t **config)
{
    int rc = cli_require_home(home);
    if (rc != EXIT_OK) {
        return rc;
    }
    char err[512];
    if (config_load(home->config_path, config, err, sizeof err) != 0) {
        complain("%s", err);
        return EXIT_USAGE; /* a malformed config is bad input */
    }
    return EXIT_OK;
}

int cli_load_identity(const home_t *home, identity_t **identity)
{
    id_err_t rc = identity_load(home->key_path, identity);
    if (rc == ID_OK) {
        return EXIT_OK;
    }
    struct stat st;
    unsigned mode = stat(home->key_path, &st) == 0 ? (unsigned)(st.st_mode & 0777) : 0;
    switch (rc) {
    case ID_E_PERMISSIONS:
        complain("%s is accessible by group or others (mode %03o); secret keys must be private: "
                 "chmod 600 %s",
                 home->key_path, mode, home->key_path);
        return EXIT_USAGE;
    case ID_E_OWNER:
        complain("%s belongs to another user; run corridor as its owner", home->key_path);
        return EXIT_USAGE;
    case ID_E_IO:
        complain("%s: %s: %s", home->key_path, id_strerror(rc), strerror(errno));
        return EXIT_INTERNAL;
    default:
        complain("%s: %s", home->key_path, id_strerror(rc));
        return EXIT_INTERNAL;
    }
}

int cli_open_home(const char *home_opt, home_t *home, config_t **config, identity_t **identity)
{
    int rc;
    if ((rc = cli_home(home, home_opt)) != EXIT_OK ||
        (rc = cli_load_config(home, config)) != EXIT_OK) {
        return rc;
    }
    return cli_load_identity(home, identity);
}

int cli_open_books(const char *home_opt, config_t **config, ledger_t **ledger)
{
    home_t home;
    char path[CORRIDOR_PATH_LEN_MAX], err[512];
    int rc;
    if ((rc = cli_home(&home, home_opt)) != EXIT_OK ||
        (rc = cli_load_config(&home, config)) != EXIT_OK) {
        return rc;
    }
    if (fs_join(path, sizeof path, home.dir, LEDGER_FILE) != 0) {
        complain("home path is too long");
        return EXIT_USAGE;
    }
    if (ledger_open(path, (*config)->name, LEDGER_READ_ONLY, NULL, ledger, err, sizeof err) !=
        LEDGER_OK) {
        complain("%s: %s", path, err);
        return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

void cli_node_card(const identity_t *identity, const config_t *config, peer_card_t *card)
{
    identity_card(identity, config->name, config->listen, card);
    snprintf(card->stream, sizeof card->stream, "%s", config->listen_stream);
}

void cli_print_card(const peer_card_t *card)
{
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    size_t n = card_encode(card, line, sizeof line);
    assert(n > 0);
    printf("%s\n", line);
}

int cli_print_document(json_t *doc)
{
    if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
        json_decref(doc);
        complain("cannot write JSON");
        return EXIT_INTERNAL;
    }
    putchar('\n');
    json_decref(doc);
    return EXIT_OK;
}

int cli_node_answer(control_err_t rc, const char *err, json_t **reply)
{
    if (rc != CONTROL_OK) {
        complain("%s", err[0] != '\0' ? err : control_strerror(rc));
    }
    switch (rc) {
    case CONTROL_OK:
        break;
    case CONTROL_E_NOT_RUNNING:
    case CONTROL_E_INTERNAL:
        return EXIT_UNREACHABLE;
    case CONTROL_E_TIMEOUT:
        return EXIT_TIMEOUT;
    case CONTROL_E_REFUSED:
        return EXIT_USAGE;
    }
    if (reply == NULL) { /* a connection, no request yet */
        return EXIT_OK;
    }
    if (!json_is_true(json_object_get(*reply, "ok"))) {
        const char *error = json_string_value(json_object_get(*reply, "error"));
        json_t *code = json_object_get(*reply, "exit");
        complain("the node refused: %s", error != NULL ? error : "no reason given");
        int exit_code = json_is_integer(code) ? (int)json_integer_value(code) : EXIT_INTERNAL;
        json_decref(*reply);
        *reply = NULL;
        return exit_code >= EXIT_NEGATIVE && exit_code <= EXIT_INTERNAL ? exit_code : EXIT_INTERNAL;
    }
    return EXIT_OK;
}

int cli_call_node(const home_t *home, const json_t *request, int timeout_ms, json_t **reply)
{
    char err[512] = "";
    return cli_node_answer(control_call(home->dir, request, timeout_ms, reply, err, sizeof err),
                           err, reply);
}

int cli_call_node_result(const home_t *home, json_t *request, int timeout_ms, json_t **result)
{
    *result = NULL;
    json_t *reply = NULL;
    int rc = request != NULL ? cli_call_node(home, request, timeout_ms, &reply) : EXIT_INTERNAL;
    json_decref(request);
    if (rc != EXIT_OK) {
        return rc;
    }
    *result = json_incref(json_array_get(json_object_get(reply, "results"), 0));
    json_decref(reply);
    if (*result == NULL) {
        complain("the node gave no result");
        return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

int cli_apply_cap(const config_t *config, config_peer_t *peer, const char *option, const char *arg,
                  unsigned *given)
{
    const char *eq = strchr(arg, '=');
    char code[8];
    if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof code) {
        complain("%s %s: expected CCY=AMOUNT, e.g. RUB=1000000", option, arg);
        return EXIT_USAGE;
    }
    memcpy(code, arg, (size_t)(eq - arg));
    code[eq - arg] = '\0';
    const currency_t *c = currency_find(code);
    if (c == NULL) {
        complain("%s %s: unknown currency %s", option, arg, code);
        return EXIT_USAGE;
    }
    if (!config_accepts(config, c->code)) {
        complain("%s %s: this node does not accept %s (its currencies are set at init)", option,
                 arg, c->code);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < config->currencies_count; i++) {
        if (strcmp(config->currencies[i], c->code) == 0) {
            if (*given & (1u << i)) {
                complain("%s %s: %s is given twice", option, arg, c->code);
                return EXIT_USAGE;
            }
            *given |= 1u << i;
        }
    }
    int64_t minor = 0;
    valid_err_t verr = amount_parse(eq + 1, c, true, &minor);
    if (verr != VALID_OK) {
        complain("%s %s: %s", option, arg, valid_strerror(verr));
        return EXIT_USAGE;
    }
    config_err_t set = config_peer_set_limit(peer, c->code, minor);
    assert(set == CONFIG_OK); /* a peer's table holds every currency */
    return EXIT_OK;
}

int cli_peer_answer(json_t *result, const char *id_key, int64_t wait_ms, bool json,
                    const char *what, const char *who)
{
    const char *id = json_string_value(json_object_get(result, id_key));
    const char *status = json_string_value(json_object_get(result, "status"));
    const char *reason = json_string_value(json_object_get(result, "reason"));
    const char *rate = json_string_value(json_object_get(result, "rate"));
    bool pending = status == NULL || strcmp(status, "pending") == 0;
    bool accepted = status != NULL && strcmp(status, "settled") == 0;
    int rc = EXIT_OK;
    if (wait_ms > 0 && pending) {
        complain("timed out after %.1f s waiting for the %s's answer", (double)wait_ms / 1000, who);
        rc = EXIT_TIMEOUT;
    } else if (wait_ms > 0 && !accepted) {
        complain("%s refused by the %s (%s)", what, who, reason ? reason : "no reason");
        rc = EXIT_NEGATIVE;
    }
    if (json) {
        int printed = cli_print_document(result);
        return rc != EXIT_OK ? rc : printed;
    }
    printf("%s %s%s%s%s%s\n", id ? id : "?",
           pending    ? "pending"
           : accepted ? "accepted"
                      : status,
           rate ? " at " : "", rate ? rate : "", reason ? " " : "", reason ? reason : "");
    json_decref(result);
    return rc;
}
