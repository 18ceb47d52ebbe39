"""The training entry the deepspeed launcher runs on every rank (``--module panel2patch.plugins.training``)."""

from __future__ import annotations

import sys

from panel2patch.errors import Panel2PatchError

from .commands import parse_launcher_args, train

if __name__ == "__main__":
    namespace = parse_launcher_args(sys.argv[1:])
    try:
        sys.exit(train(namespace))
    except (Panel2PatchError, OSError) as exc:
        print(f"panel2patch train: error: {exc}", file=sys.stderr)
        sys.exit(2)
