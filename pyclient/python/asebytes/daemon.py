"""The asebytes daemon, as linked into this package's extension.

``python -m asebytes.daemon run --socket PATH`` and the ``asebytesd`` console script run
the same Rust code as the standalone ``asebytesd`` binary (``run``, ``start``, ``stop``,
``status``, ``install-service``), so a wheel is self-contained and the client always
spawns a daemon from its own build.
"""

from __future__ import annotations

import sys

from . import _native


def main(argv: list[str] | None = None) -> int:
    """Run the daemon CLI with ``argv`` (default ``sys.argv``; ``argv[0]`` is the program)."""
    args = list(sys.argv if argv is None else argv)
    # Help and errors then say "asebytesd", not ".../asebytes/daemon.py".
    args[:1] = ["asebytesd"]
    return _native.daemon_main(args)


if __name__ == "__main__":
    sys.exit(main())
