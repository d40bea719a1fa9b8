/*
 * Tests of node/app/batch.c: a batch file is read whole before anything is sent, so every
 * way a line can be malformed must be refused with its line number, and RFC 4180 quoting
 * (commas, quotes and line breaks inside remittance text) must come through unchanged.
 */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

#define ROWS_MAX 8

typedef struct {
    size_t count;
    size_t lines[ROWS_MAX];
    char to[ROWS_MAX][64], amount[ROWS_MAX][64], remittance[ROWS_MAX][256];
    bool remittance_absent[ROWS_MAX];
    int stop_at; /* row count at which the callback stops the read (0: never) */
} rows_t;

static int collect(void *ctx, size_t line, const batch_row_t *row)
{
    rows_t *r = ctx;
    if (r->stop_at != 0 && (int)r->count + 1 == r->stop_at) {
        return 1;
    }
    assert_true(r->count < ROWS_MAX);
    r->lines[r->count] = line;
    snprintf(r->to[r->count], sizeof r->to[0], "%s", row->to ? row->to : "");
    snprintf(r->amount[r->count], sizeof r->amount[0], "%s", row->amount ? row->amount : "");
    snprintf(r->remittance[r->count], sizeof r->remittance[0], "%s",
             row->remittance ? row->remittance : "");
    r->remittance_absent[r->count] = row->remittance == NULL;
    r->count++;
    return 0;
}

/* Reads `text` as a batch of `format`; err receives the message. */
static batch_err_t read_text(const char *text, size_t len, batch_format_t format, rows_t *rows,
                             char *err, size_t err_size)
{
    FILE *f = fmemopen((void *)text, len, "r");
    assert_non_null(f);
    batch_err_t rc = batch_read(f, format, collect, rows, err, err_size);
    fclose(f);
    return rc;
}

static void test_csv_quoting_rfc4180(void **state)
{
    (void)state;
    const char text[] = "to,amount,currency,remittance\r\n"
                        "BMJIIRTH,125.50,RUB,\"Invoice 7, \"\"urgent\"\"\"\r\n"
                        "\r\n"
                        "BMJIIRTH,1,IRR,\"two\nlines\"\n"
                        "BMJIIRTH,2,IRR,\n"
                        "\"BMJIIRTH\",3,IRR,plain";
    rows_t rows = {0};
    char err[256];
    assert_int_equal(read_text(text, sizeof text - 1, BATCH_FORMAT_CSV, &rows, err, sizeof err),
                     BATCH_OK);
    assert_int_equal(rows.count, 4);
    assert_string_equal(rows.remittance[0], "Invoice 7, \"urgent\"");
    assert_string_equal(rows.amount[0], "125.50");
    assert_int_equal(rows.lines[0], 2);
    assert_string_equal(rows.remittance[1], "two\nlines");
    assert_int_equal(rows.lines[1], 4);
    assert_true(rows.remittance_absent[2]); /* an empty field is absent */
    assert_int_equal(rows.lines[2], 6);     /* the quoted line break counted */
    assert_string_equal(rows.to[3], "BMJIIRTH");
    assert_string_equal(rows.remittance[3], "plain");
}

static void test_csv_columns_in_any_order(void **state)
{
    (void)state;
    const char text[] = "currency,to,amount\nRUB,BMJIIRTH,5\n";
    rows_t rows = {0};
    char err[256];
    assert_int_equal(read_text(text, sizeof text - 1, BATCH_FORMAT_CSV, &rows, err, sizeof err),
                     BATCH_OK);
    assert_int_equal(rows.count, 1);
    assert_string_equal(rows.to[0], "BMJIIRTH");
    assert_string_equal(rows.amount[0], "5");
}

/* Each malformed input, and the line and words its refusal must name. */
static void test_csv_malformed_refused_with_line(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t len;
        const char *says;
    } cases[] = {
        {"to,amount,currency\nA,1,RUB\nA,1\n", 0, "line 3: 2 fields, the header has 3"},
        {"to,amount,currency\nA,1,RUB,x\n", 0, "line 2: 4 fields"},
        {"to,amount,currency\nA,1 \"x\",RUB\n", 0, "line 2: a quote inside an unquoted"},
        {"to,amount,currency\nA,\"1\"x,RUB\n", 0, "line 2: text after a closing quote"},
        {"to,amount,currency\nA,1,RUB\nA,\"1,RUB\nB,2,RUB\n", 0, "line 3: a quoted field is never"},
        {"to,amount,currencies\n", 0, "line 1: unknown column 'currencies'"},
        {"to,amount,to\n", 0, "line 1: column 'to' twice"},
        {"to,amount\nA,1\n", 0, "line 1: the header must name"},
        {"", 0, "line 1: no header"},
        {"to,amount,currency\nA,1\0,RUB\n", 31, "line 2: a NUL byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rows_t rows = {0};
        char err[256] = "";
        size_t len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].text);
        batch_err_t rc = read_text(cases[i].text, len, BATCH_FORMAT_CSV, &rows, err, sizeof err);
        if (rc != BATCH_E_MALFORMED || strstr(err, cases[i].says) == NULL) {
            fail_msg("case %zu: got %d '%s', wanted '%s'", i, rc, err, cases[i].says);
        }
    }
}

static void test_csv_record_too_long(void **state)
{
    (void)state;
    size_t len = 32 + BATCH_RECORD_MAX + 8;
    char *text = malloc(len + 1);
    assert_non_null(text);
    int n = snprintf(text, len + 1, "to,amount,currency,remittance\nA,1,RUB,");
    memset(text + n, 'x', len - (size_t)n);
    text[len] = '\0';
    rows_t rows = {0};
    char err[256];
    assert_int_equal(read_text(text, len, BATCH_FORMAT_CSV, &rows, err, sizeof err),
                     BATCH_E_MALFORMED);
    assert_non_null(strstr(err, "line 2: record longer than"));
    free(text);
}

static void test_callback_stops_the_read(void **state)
{
    (void)state;
    const char text[] = "to,amount,currency\nA,1,RUB\nB,2,RUB\nC,3,RUB\n";
    rows_t rows = {.stop_at = 2};
    char err[256];
    assert_int_equal(read_text(text, sizeof text - 1, BATCH_FORMAT_CSV, &rows, err, sizeof err),
                     BATCH_E_STOPPED);
    assert_int_equal(rows.count, 1);
}

static void test_jsonl(void **state)
{
    (void)state;
    const char text[] = "{\"to\": \"BMJIIRTH\", \"amount\": \"125.50\", \"currency\": \"RUB\", "
                        "\"remittance\": \"Invoice 7, \\\"urgent\\\"\"}\n"
                        "\n"
                        "{\"to\": \"BMJIIRTH\", \"amount\": 1000, \"currency\": \"IRR\"}\n";
    rows_t rows = {0};
    char err[256];
    assert_int_equal(read_text(text, sizeof text - 1, BATCH_FORMAT_JSONL, &rows, err, sizeof err),
                     BATCH_OK);
    assert_int_equal(rows.count, 2);
    assert_string_equal(rows.remittance[0], "Invoice 7, \"urgent\"");
    assert_string_equal(rows.amount[1], "1000");
    assert_int_equal(rows.lines[1], 3);
    assert_true(rows.remittance_absent[1]);
}

static void test_jsonl_malformed_refused_with_line(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *says;
    } cases[] = {
        {"{\"to\": \"A\", \"amount\": \"1\", \"currency\": \"RUB\"}\n{\"to\": \"A\",\n",
         "line 2: "},
        {"[1, 2]\n", "line 1: not a JSON object"},
        {"{\"to\": \"A\", \"amount\": 1.5, \"currency\": \"RUB\"}\n", "line 1: 'amount' must be"},
        {"{\"to\": 7, \"amount\": \"1\", \"currency\": \"RUB\"}\n",
         "line 1: 'to' must be a string"},
        {"{\"to\": \"A\", \"amont\": \"1\"}\n", "line 1: unknown key 'amont'"},
        {"{\"to\": \"A\", \"to\": \"B\"}\n", "line 1: "},
        {"{\"to\": \"A\\u0000B\", \"amount\": \"1\", \"currency\": \"RUB\"}\n",
         "line 1: \\u0000 is not allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rows_t rows = {0};
        char err[256] = "";
        batch_err_t rc = read_text(cases[i].text, strlen(cases[i].text), BATCH_FORMAT_JSONL, &rows,
                                   err, sizeof err);
        if (rc != BATCH_E_MALFORMED || strstr(err, cases[i].says) == NULL) {
            fail_msg("case %zu: got %d '%s', wanted '%s'", i, rc, err, cases[i].says);
        }
    }
}

static void test_format_of_name(void **state)
{
    (void)state;
    assert_int_equal(batch_format_of("pay.jsonl"), BATCH_FORMAT_JSONL);
    assert_int_equal(batch_format_of("pay.csv"), BATCH_FORMAT_CSV);
    assert_int_equal(batch_format_of("jsonl"), BATCH_FORMAT_CSV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_quoting_rfc4180),
        cmocka_unit_test(test_csv_columns_in_any_order),
        cmocka_unit_test(test_csv_malformed_refused_with_line),
        cmocka_unit_test(test_csv_record_too_long),
        cmocka_unit_test(test_callback_stops_the_read),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_jsonl_malformed_refused_with_line),
        cmocka_unit_test(test_format_of_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
