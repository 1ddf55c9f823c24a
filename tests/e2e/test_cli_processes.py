"""The command lines that hand their arguments to a process of their own (``ganwatch train``,
``ganwatch eval``): still one line on stderr and exit 2, as tests/unit/test_cli_parser.py
checks for the rest without starting anything."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT


def _one_line(err: str, prefix: str) -> None:
    assert err.startswith(prefix) and err.count("\n") == 1, err
    assert "Traceback" not in err and "usage:" not in err


@pytest.mark.parametrize("argv, prefix", [
    (["train", "--lr", "fast"], "python -m trainer_client.dcgan: error: argument --lr"),
    (["eval"], "ganwatch eval: error: the following arguments are required: checkpoint"),
])
def test_train_and_eval_errors_are_one_line(argv, prefix):
    """``ganwatch train`` and ``eval`` hand their arguments to the trainer's own parser, in a
    process of its own."""
    done = subprocess.run([sys.executable, "-m", "ganwatch", *argv], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2 and done.stdout == ""
    _one_line(done.stderr, prefix)
