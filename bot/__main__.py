"""``python -m bot``: the same as the ``meetmood`` command."""

import sys

from bot.cli import main

# Guarded: a spawned child process imports this module again (as ``__mp_main__``).
if __name__ == "__main__":
    sys.exit(main())
