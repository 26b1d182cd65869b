"""How the client stops: an exit status and what was already written to stderr.

Jool's exit status is the low byte of its (often negative) internal error number
(spec/cli.md §4), hence the constants below.
"""

import sys

EINVAL_EXIT = (-22) & 0xFF      # 234: client-side validation failure
EEXIST_EXIT = (-17) & 0xFF      # 239: duplicated JSON tag
E2BIG_EXIT = (-7) & 0xFF        # 249: pool4 add prefix shorter than /24
ESRCH_EXIT = (-3) & 0xFF        # 253: the translator cannot be reached
ARGP_EXIT = 64                  # EX_USAGE: argp errors
ERANGE = 34


class Exit(Exception):
    """Stop the command with this exit status (messages are already printed)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code & 0xFF


def error(message, code=EINVAL_EXIT):
    """Print `Error: <message>` and stop with `code`."""
    sys.stderr.write(f"Error: {message}\n")
    raise Exit(code)


def warning(message):
    sys.stderr.write(f"Warning: {message}\n")


def missing(items):
    """`The command is missing A, B and C.` (no `Error:` prefix), exit 234."""
    if len(items) == 1:
        text = items[0]
    else:
        text = ", ".join(items[:-1]) + " and " + items[-1]
    sys.stderr.write(f"The command is missing {text}.\n")
    raise Exit(EINVAL_EXIT)
