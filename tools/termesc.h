/* Text from the guest made safe to print: guestctl writes names, messages
 * and log lines that a guest user can choose (a process name, a mount point,
 * an error text), and none of their bytes may reach the reader's terminal
 * as a control sequence. */
#ifndef GUESTD_TERMESC_H
#define GUESTD_TERMESC_H

#include <stddef.h>
#include <stdio.h>

/* How an escaped byte is shown: "\x1b" in text (a C1 control as "\u009b"),
 * "\u001b" in JSON text (where it means the same character, so the JSON
 * stays valid). */
typedef enum { GD_ESC_TEXT, GD_ESC_JSON } gd_esc_style_t;

/* Escapes s[0..len) into buf (NUL-terminated, cut at a whole character or
 * escape). Escaped: C0 controls (newline and tab included), DEL, the C1
 * controls U+0080..U+009F, and every byte that is not part of valid UTF-8
 * (shown as "\xNN" in text, U+FFFD in JSON). Everything else is copied.
 * Returns the length written. */
size_t gd_esc(gd_esc_style_t style, const char *s, size_t len, char *buf, size_t buflen);
/* The same, written to out. */
void gd_esc_write(FILE *out, gd_esc_style_t style, const char *s, size_t len);
/* gd_esc_write of a NUL-terminated string (NULL prints nothing). */
void gd_esc_puts(FILE *out, gd_esc_style_t style, const char *s);
/* The length of the clamped snprintf result: what was written into a buffer
 * of len bytes when snprintf returned r (never more than len-1, 0 for an
 * error). */
size_t gd_snprintf_len(int r, size_t len);

#endif
