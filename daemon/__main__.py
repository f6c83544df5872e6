"""The console entry point (`pillarwatch`, `python -m daemon`): `--version` answered before any import.

Everything else is `daemon.cli.main`, imported only then: importing the whole
command line (typer, rich, pydantic, the configuration's models) costs far more
than printing a version.
"""

from __future__ import annotations

import sys

from daemon import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"pillarwatch {__version__}\n")
        sys.exit(0)
    from daemon.cli import main as cli_main  # the command line loads after `--version` is answered: start-up time

    cli_main()


if __name__ == "__main__":
    main()
