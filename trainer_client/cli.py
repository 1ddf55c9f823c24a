"""What every command line here shares: a bad argument or a failed command is one line on
stderr, ``NAME: error: MESSAGE``, never a usage dump or a traceback.

The ``ganwatch`` commands, ``python -m trainer_client.dcgan`` and the benches all use these two.
They live in the client because the client imports nothing above it: ``ganwatch`` may import
``trainer_client``, never the other way round. No torch here.
"""

from __future__ import annotations

import argparse
import functools
import sys

PROG = "ganwatch"  # who speaks in the ganwatch command's messages, the client's included


def fail(prog: str, message: str) -> None:
    """Print the one line that says what went wrong, ``PROG: error: MESSAGE``, on stderr.
    The caller picks the exit status."""
    print(f"{prog}: error: {message}", file=sys.stderr)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line from :func:`fail`, exit 2.

    ``prefix`` names the speaker (default: ``prog``) and ``hint`` ends the line. Subcommand
    parsers inherit both, so ``ganwatch serve --port x`` says ``ganwatch: error: ...``, not
    ``ganwatch serve: error: ...``.
    """

    def __init__(self, *args, prefix: str | None = None, hint: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prefix = prefix or self.prog
        self.hint = hint

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", functools.partial(
            OneLineParser, prefix=self.prefix, hint=self.hint))
        return super().add_subparsers(**kwargs)

    def error(self, message: str):
        fail(self.prefix, message + self.hint)
        self.exit(2)
