/* A small, fast JSON reader for metrics-log lines (see ljson.h). */
#include "tools/ljson.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

void gd_lj_init(gd_lj_doc_t *doc)
{
    memset(doc, 0, sizeof(*doc));
}

void gd_lj_free(gd_lj_doc_t *doc)
{
    free(doc->nodes);
    memset(doc, 0, sizeof(*doc));
}

static int32_t new_node(gd_lj_doc_t *doc)
{
    if (doc->n == doc->cap) {
        size_t cap = doc->cap ? doc->cap * 2 : 256;
        gd_lj_node_t *nodes = realloc(doc->nodes, cap * sizeof(*nodes));
        if (!nodes) return -1;
        doc->nodes = nodes;
        doc->cap = cap;
    }
    gd_lj_node_t *n = &doc->nodes[doc->n];
    n->escaped = n->key_escaped = 0;
    n->key = NULL;
    n->key_len = 0;
    n->child = n->next = -1;
    return (int32_t)doc->n++;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Length of the number token at p (strict JSON grammar), 0 if none. */
static size_t number_len(const char *p, const char *end)
{
    const char *s = p;
    if (p < end && *p == '-') p++;
    if (p >= end) return 0;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return 0;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    return (size_t)(p - s);
}

/* The value of a token number_len accepted. Mantissas of up to 15 digits
 * scaled by at most 10^22 are exact in one multiplication or division (both
 * operands are exact doubles, so the result is correctly rounded); anything
 * else goes to strtod. */
static double number_value(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    int neg = 0, digits = 0, exp10 = 0;
    uint64_t m = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    while (p < end && *p >= '0' && *p <= '9') {
        if (digits || *p != '0') digits++;
        m = m * 10 + (uint64_t)(*p - '0');
        p++;
        if (digits > 15) goto slow;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits || *p != '0') digits++;
            m = m * 10 + (uint64_t)(*p - '0');
            exp10--;
            p++;
            if (digits > 15) goto slow;
        }
    }
    if (p < end) goto slow; /* an exponent: rare in the agent's output */
    if (exp10 < -22) goto slow;
    double v = exp10 < 0 ? (double)m / pow10_exact[-exp10] : (double)m;
    return neg ? -v : v;
slow : {
    char buf[64];
    if (len >= sizeof(buf)) {
        char *copy = malloc(len + 1);
        if (!copy) return 0;
        memcpy(copy, s, len);
        copy[len] = '\0';
        double d = strtod(copy, NULL);
        free(copy);
        return d;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    return strtod(buf, NULL);
}
}

int gd_lj_number(const char *s, size_t len, double *out)
{
    if (len == 0 || number_len(s, s + len) != len) return -1;
    *out = number_value(s, len);
    return 0;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Scans a string whose opening quote is at p[-1]; returns the closing quote
 * (or NULL), sets *escaped when it holds a backslash. Control characters are
 * invalid; escapes are checked for shape, not decoded. */
static const char *scan_string(const char *p, const char *end, int *escaped)
{
    *escaped = 0;
    for (;;) {
        const char *q = p;
        while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        if (q >= end || (unsigned char)*q < 0x20) return NULL;
        if (*q == '"') return q;
        *escaped = 1;
        q++;
        if (q >= end) return NULL;
        if (*q == 'u') {
            for (int i = 1; i <= 4; i++) {
                char c = q + i < end ? q[i] : 0;
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                    return NULL;
            }
            q += 5;
        } else if (strchr("\"\\/bfnrt", *q) && *q) {
            q++;
        } else {
            return NULL;
        }
        p = q;
    }
}

int gd_lj_parse(gd_lj_doc_t *doc, const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    int32_t stack[MAX_DEPTH]; /* open containers */
    int32_t last[MAX_DEPTH];  /* their last child so far */
    int depth = 0;
    const char *key = NULL;
    size_t key_len = 0;
    int key_escaped = 0;
    doc->n = 0;

    p = skip_ws(p, end);
    for (;;) {
        /* A value is expected at p. */
        if (p >= end) return -1;
        int32_t id = new_node(doc);
        if (id < 0) return -2;
        gd_lj_node_t *n = &doc->nodes[id];
        n->key = key;
        n->key_len = key_len;
        n->key_escaped = key_escaped;
        key = NULL;
        if (depth > 0) {
            gd_lj_node_t *parent = &doc->nodes[stack[depth - 1]];
            if (last[depth - 1] < 0)
                parent->child = id;
            else
                doc->nodes[last[depth - 1]].next = id;
            last[depth - 1] = id;
        }
        int opened = 0;
        switch (*p) {
        case '{':
        case '[':
            n->type = *p == '{' ? GD_LJ_OBJECT : GD_LJ_ARRAY;
            n->text = p;
            if (depth == MAX_DEPTH) return -1;
            stack[depth] = id;
            last[depth] = -1;
            depth++;
            p = skip_ws(p + 1, end);
            opened = 1;
            break;
        case '"': {
            const char *q = scan_string(p + 1, end, &n->escaped);
            if (!q) return -1;
            n->type = GD_LJ_STRING;
            n->text = p + 1;
            n->text_len = (size_t)(q - p - 1);
            p = q + 1;
            break;
        }
        case 't':
            if (end - p < 4 || memcmp(p, "true", 4) != 0) return -1;
            n->type = GD_LJ_TRUE;
            p += 4;
            break;
        case 'f':
            if (end - p < 5 || memcmp(p, "false", 5) != 0) return -1;
            n->type = GD_LJ_FALSE;
            p += 5;
            break;
        case 'n':
            if (end - p < 4 || memcmp(p, "null", 4) != 0) return -1;
            n->type = GD_LJ_NULL;
            p += 4;
            break;
        default: {
            size_t nl = number_len(p, end);
            if (!nl) return -1;
            n->type = GD_LJ_NUMBER;
            n->text = p;
            n->text_len = nl;
            n->num = number_value(p, nl);
            p += nl;
        }
        }
        /* After a value (or an opening bracket): close containers, find the
         * next key or value. */
        for (;;) {
            if (!opened) p = skip_ws(p, end);
            if (depth == 0) {
                p = skip_ws(p, end);
                return p == end ? 0 : -1;
            }
            gd_lj_node_t *top = &doc->nodes[stack[depth - 1]];
            char close = top->type == GD_LJ_OBJECT ? '}' : ']';
            if (p >= end) return -1;
            if (*p == close && (opened || last[depth - 1] >= 0)) {
                top->text_len = (size_t)(p + 1 - top->text);
                depth--;
                p++;
                opened = 0;
                continue;
            }
            if (!opened) {
                if (*p != ',') return -1;
                p = skip_ws(p + 1, end);
            }
            if (top->type == GD_LJ_OBJECT) {
                if (p >= end || *p != '"') return -1;
                const char *q = scan_string(p + 1, end, &key_escaped);
                if (!q) return -1;
                key = p + 1;
                key_len = (size_t)(q - p - 1);
                p = skip_ws(q + 1, end);
                if (p >= end || *p != ':') return -1;
                p = skip_ws(p + 1, end);
            }
            break;
        }
    }
}

const gd_lj_node_t *gd_lj_get(const gd_lj_doc_t *doc, const gd_lj_node_t *obj, const char *key)
{
    if (!obj || obj->type != GD_LJ_OBJECT) return NULL;
    size_t len = strlen(key);
    for (const gd_lj_node_t *c = gd_lj_child(doc, obj); c; c = gd_lj_next(doc, c))
        if (c->key_len == len && memcmp(c->key, key, len) == 0) return c;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t gd_lj_string(const gd_lj_node_t *n, int key, char *buf, size_t len)
{
    const char *s = key ? n->key : n->text;
    size_t slen = key ? n->key_len : n->text_len;
    int escaped = key ? n->key_escaped : n->escaped;
    size_t o = 0;
    if (!len) return 0;
    if (!s) {
        buf[0] = '\0';
        return 0;
    }
    if (!escaped) {
        o = slen < len - 1 ? slen : len - 1;
        memcpy(buf, s, o);
        buf[o] = '\0';
        return o;
    }
    for (size_t i = 0; i < slen && o + 4 < len;) {
        if (s[i] != '\\') {
            buf[o++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'b':
            buf[o++] = '\b';
            break;
        case 'f':
            buf[o++] = '\f';
            break;
        case 'n':
            buf[o++] = '\n';
            break;
        case 'r':
            buf[o++] = '\r';
            break;
        case 't':
            buf[o++] = '\t';
            break;
        case 'u': {
            unsigned cp = 0;
            for (int k = 0; k < 4; k++)
                cp = cp * 16 + (unsigned)hexval(s[i + (size_t)k]);
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= slen && s[i] == '\\' && s[i + 1] == 'u') {
                unsigned lo = 0;
                for (int k = 0; k < 4; k++)
                    lo = lo * 16 + (unsigned)hexval(s[i + 2 + (size_t)k]);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
            o += put_utf8(buf + o, cp);
            break;
        }
        default:
            buf[o++] = e;
        }
    }
    buf[o] = '\0';
    return o;
}
