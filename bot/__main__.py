"""``python -m bot``: the same as the ``meetmood`` command."""

import sys

from bot.cli import main

sys.exit(main())
