/* file.read, file.write and file.stat: the file work runs in libuv's thread
 * pool, never on the loop. A write without `append` replaces the file
 * atomically (a temporary file in the same directory, fsync, rename). */
#ifndef GUESTD_FILE_H
#define GUESTD_FILE_H

#include "commands/command.h"

/* Parses a mode given as an octal string ("644", "0644", "4755"): 1 to 4
 * octal digits, at most 07777. Returns the mode or -EINVAL. */
int gd_file_parse_mode(const char *s);

extern const gd_command_t gd_commands_file[];

#endif
