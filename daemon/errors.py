"""The errors pillarwatch raises on purpose, as one tree::

    PillarwatchError            anything the user can act on; one line, exit 2
    ├── ConfigError             a configuration file is unreadable or invalid
    ├── StoreError              the database cannot be opened or is too new
    ├── NotFound                a project, snapshot or criterion does not exist
    ├── InputError              a document or file given on the command line is unreadable
    └── ListenError             the HTTP API cannot listen on its address (a port already taken)

Faults in sources are not here: collectors return them as evidence errors.
"""

from __future__ import annotations


class PillarwatchError(Exception):
    """Base class: the message is one line meant for the user."""

    exit_code = 2


class ConfigError(PillarwatchError):
    """The configuration cannot be used; ``problems`` holds one line per fault."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n" + "\n".join(problems))


class StoreError(PillarwatchError):
    pass


class NotFound(PillarwatchError):
    pass


class InputError(PillarwatchError):
    pass


class ListenError(PillarwatchError):
    pass
