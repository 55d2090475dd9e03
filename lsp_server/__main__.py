"""``python -m pilotfish.lsp_server``: the same as the ``pilotfish`` command."""

import sys

from .cli import main

sys.exit(main())
