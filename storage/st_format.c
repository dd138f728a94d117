/* Row sinks: a result set written as an aligned table, CSV (RFC 4180) or JSON. See
 * st_query_internal.h. */
#include "st_query_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows a table holds to measure its columns; later rows reuse those widths, so that memory
 * stays bounded whatever the limit. */
#define TABLE_ROWS 1000

/* ---- cells ------------------------------------------------------------------------------- */

static void sb_add(st__sbuf *b, const char *s, size_t n) {
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 64;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Empties b, keeping its memory; b->p is "" afterwards when allocated. */
static void sb_reset(st__sbuf *b) {
    b->len = 0;
    if (b->p != NULL) {
        b->p[0] = '\0';
    }
}

static void sb_str(st__sbuf *b, const char *s) {
    sb_add(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xc2 && c <= 0xdf ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f)) {
        return 0;
    }
    return len;
}

/* A JSON string: quotes, backslashes and control characters escaped, bytes that are not UTF-8
 * replaced by U+FFFD, so that the output always parses. */
static void sb_json_str(st__sbuf *b, const char *s, size_t n) {
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sb_add(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (named == NULL) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                named = esc;
            }
            sb_str(b, named);
            i++;
        } else {
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len == 0) {
                sb_str(b, "\\ufffd");
                i++;
            } else {
                sb_add(b, s + i, len);
                i += len;
            }
        }
    }
    sb_add(b, "\"", 1);
}

/* An RFC 4180 field: quoted when it holds a comma, a quote, CR or LF (quotes doubled), and
 * when empty, so that an empty string differs from NULL (an empty field). */
static void sb_csv_str(st__sbuf *b, const char *s, size_t n) {
    if (n > 0 && strpbrk(s, ",\"\r\n") == NULL && memchr(s, '\0', n) == NULL) {
        sb_add(b, s, n);
        return;
    }
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            sb_add(b, "\"\"", 2);
        } else {
            sb_add(b, s + i, 1);
        }
    }
    sb_add(b, "\"", 1);
}

/* Table text: control characters and bytes that are not UTF-8 shown as escapes, so that a
 * cell stays on its line and the terminal shows what is stored. */
static void sb_table_str(st__sbuf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c >= 0x20 && c != 0x7f ? utf8_len((const unsigned char *)s + i, n - i) : 0;
        if (len > 0) {
            sb_add(b, s + i, len);
            i += len;
            continue;
        }
        char esc[8];
        const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (named == NULL) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            named = esc;
        }
        sb_str(b, named);
        i++;
    }
}

/* The shortest "%.*g" that reads back as v (15 to 17 digits), or `digits` digits exactly. */
static void sb_real(st__sbuf *b, double v, int digits, st_format fmt) {
    char num[40];
    if (!isfinite(v)) {
        sb_str(b, fmt == ST_FORMAT_JSON ? "null" : isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    if (digits > 0) {
        snprintf(num, sizeof(num), "%.*g", digits, v);
    } else {
        for (int p = 15; p <= 17; p++) {
            snprintf(num, sizeof(num), "%.*g", p, v);
            if (strtod(num, NULL) == v) {
                break;
            }
        }
    }
    sb_str(b, num);
}

/* Appends column col of the current row as it appears in fmt. */
static void sb_cell(st__sbuf *b, sqlite3_stmt *st, int col, st_format fmt) {
    char num[32];
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
        snprintf(num, sizeof(num), "%lld", (long long)sqlite3_column_int64(st, col));
        sb_str(b, num);
        break;
    case SQLITE_FLOAT:
        sb_real(b, sqlite3_column_double(st, col), fmt == ST_FORMAT_TABLE ? 10 : 0, fmt);
        break;
    case SQLITE_NULL:
        sb_str(b, fmt == ST_FORMAT_JSON ? "null" : "");
        break;
    default: { /* TEXT, and BLOB (never stored by iotgw) as its bytes */
        const char *s = (const char *)sqlite3_column_text(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);
        s = s != NULL ? s : "";
        if (fmt == ST_FORMAT_JSON) {
            sb_json_str(b, s, n);
        } else if (fmt == ST_FORMAT_CSV) {
            sb_csv_str(b, s, n);
        } else {
            sb_table_str(b, s, n);
        }
    }
    }
}

/* Display width: one column per UTF-8 code point (wide characters are not measured). */
static size_t width_of(const char *s) {
    size_t w = 0;
    for (; *s != '\0'; s++) {
        w += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return w;
}

/* ---- sinks: rows to a FILE in one format ------------------------------------------------- */

int st__sink_init(st__sink *k, st_format fmt, FILE *out, sqlite3_stmt *st, int ncol) {
    *k = (st__sink){.fmt = fmt, .out = out, .st = st, .ncol = ncol};
    if (ncol < 1 || ncol > sqlite3_column_count(st) || ncol > ST__MAX_COLS) {
        return ST_EIO;
    }
    if (fmt != ST_FORMAT_TABLE) {
        return 0;
    }
    size_t n = (size_t)k->ncol;
    k->cells = calloc((size_t)TABLE_ROWS * n, sizeof(*k->cells));
    k->width = calloc(n, sizeof(*k->width));
    k->number = calloc(n, sizeof(*k->number));
    k->text = calloc(n, sizeof(*k->text));
    if (k->cells == NULL || k->width == NULL || k->number == NULL || k->text == NULL) {
        return ST_ENOMEM;
    }
    for (int c = 0; c < k->ncol; c++) {
        k->width[c] = width_of(sqlite3_column_name(st, c));
    }
    return 0;
}

void st__sink_free(st__sink *k) {
    for (size_t i = 0; k->cells != NULL && i < k->held * (size_t)k->ncol; i++) {
        free(k->cells[i]);
    }
    free(k->cells);
    free(k->width);
    free(k->number);
    free(k->text);
    free(k->line.p);
}

static void pad(st__sbuf *b, size_t n) {
    static const char spaces[] = "                                ";
    while (n > 0) {
        size_t m = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        sb_add(b, spaces, m);
        n -= m;
    }
}

/* One table line; cells wider than their column push the rest of the line right. */
static void table_line(st__sink *k, char *const *cells) {
    sb_reset(&k->line);
    for (int c = 0; c < k->ncol; c++) {
        size_t w = width_of(cells[c]);
        size_t fill = w < k->width[c] ? k->width[c] - w : 0;
        bool right = k->number[c] && !k->text[c];
        if (c > 0) {
            sb_add(&k->line, "  ", 2);
        }
        if (right) {
            pad(&k->line, fill);
        }
        sb_str(&k->line, cells[c]);
        if (!right && c + 1 < k->ncol) {
            pad(&k->line, fill);
        }
    }
    sb_add(&k->line, "\n", 1);
    if (!k->line.oom) {
        fwrite(k->line.p, 1, k->line.len, k->out);
    }
}

/* Writes the header, the rule under it and the held rows; fixes the widths. */
static int table_start(st__sink *k) {
    char *names[ST__MAX_COLS], *rule[ST__MAX_COLS];
    for (int c = 0; c < k->ncol; c++) {
        names[c] = (char *)sqlite3_column_name(k->st, c);
        rule[c] = malloc(k->width[c] + 1);
        if (rule[c] == NULL) {
            for (int j = 0; j < c; j++) {
                free(rule[j]);
            }
            return ST_ENOMEM;
        }
        memset(rule[c], '-', k->width[c]);
        rule[c][k->width[c]] = '\0';
    }
    table_line(k, names);
    table_line(k, rule);
    for (int c = 0; c < k->ncol; c++) {
        free(rule[c]);
    }
    for (size_t r = 0; r < k->held; r++) {
        table_line(k, k->cells + r * (size_t)k->ncol);
    }
    for (size_t i = 0; i < k->held * (size_t)k->ncol; i++) {
        free(k->cells[i]);
        k->cells[i] = NULL;
    }
    k->held = 0;
    k->started = true;
    return k->line.oom ? ST_ENOMEM : 0;
}

static void csv_header(st__sink *k, st__sbuf *b) {
    for (int c = 0; c < k->ncol; c++) {
        const char *name = sqlite3_column_name(k->st, c);
        sb_str(b, c > 0 ? "," : "");
        sb_csv_str(b, name, strlen(name));
    }
    sb_add(b, "\r\n", 2);
}

int st__sink_row(st__sink *k) {
    st__sbuf *b = &k->line;
    if (k->fmt == ST_FORMAT_TABLE) {
        if (k->started || k->held == TABLE_ROWS) {
            if (!k->started && table_start(k) != 0) {
                return ST_ENOMEM;
            }
            char *cells[ST__MAX_COLS];
            st__sbuf all = {0};
            size_t off[ST__MAX_COLS];
            for (int c = 0; c < k->ncol; c++) {
                off[c] = all.len;
                sb_cell(&all, k->st, c, k->fmt);
                sb_add(&all, "", 1); /* keeps the terminator between cells */
            }
            if (all.oom) {
                free(all.p);
                return ST_ENOMEM;
            }
            for (int c = 0; c < k->ncol; c++) {
                cells[c] = all.p + off[c];
            }
            table_line(k, cells);
            free(all.p);
        } else {
            char **row = k->cells + k->held * (size_t)k->ncol;
            k->held++; /* counted before filling, so that sink_free frees a partial row */
            for (int c = 0; c < k->ncol; c++) {
                /* Before sb_cell: the type of a column is undefined after a conversion. */
                int type = sqlite3_column_type(k->st, c);
                k->number[c] |= type == SQLITE_INTEGER || type == SQLITE_FLOAT;
                k->text[c] |= type == SQLITE_TEXT || type == SQLITE_BLOB;
                sb_reset(b);
                sb_cell(b, k->st, c, k->fmt);
                if (b->oom || (row[c] = strdup(b->p != NULL ? b->p : "")) == NULL) {
                    return ST_ENOMEM;
                }
                size_t w = width_of(row[c]);
                k->width[c] = w > k->width[c] ? w : k->width[c];
            }
        }
        k->rows++;
        return b->oom ? ST_ENOMEM : 0;
    }
    sb_reset(b);
    if (k->fmt == ST_FORMAT_JSON) {
        sb_str(b, k->rows == 0 ? "[\n{" : ",\n{");
        for (int c = 0; c < k->ncol; c++) {
            const char *name = sqlite3_column_name(k->st, c);
            if (c > 0) {
                sb_add(b, ",", 1);
            }
            sb_json_str(b, name, strlen(name));
            sb_add(b, ":", 1);
            sb_cell(b, k->st, c, k->fmt);
        }
        sb_add(b, "}", 1);
    } else {
        if (k->rows == 0) {
            csv_header(k, b);
        }
        for (int c = 0; c < k->ncol; c++) {
            sb_str(b, c > 0 ? "," : "");
            sb_cell(b, k->st, c, k->fmt);
        }
        sb_add(b, "\r\n", 2);
    }
    if (b->oom) {
        return ST_ENOMEM;
    }
    fwrite(b->p, 1, b->len, k->out);
    k->rows++;
    return 0;
}

/* Writes what an empty or held result still owes: headers, held table rows, the JSON end. */
int st__sink_end(st__sink *k) {
    if (k->fmt == ST_FORMAT_TABLE) {
        return k->started ? 0 : table_start(k);
    }
    if (k->fmt == ST_FORMAT_JSON) {
        fputs(k->rows == 0 ? "[]\n" : "\n]\n", k->out);
    } else if (k->rows == 0) {
        /* The header alone: the columns of an empty result. */
        sb_reset(&k->line);
        csv_header(k, &k->line);
        if (k->line.oom) {
            return ST_ENOMEM;
        }
        fwrite(k->line.p, 1, k->line.len, k->out);
    }
    return 0;
}
