"""The client's warnings go through the ``ganwatch`` logger: on their own line above a tqdm
progress bar (never torn into it), at most once per kind per REPEAT_S seconds with a count of
the ones held back, and silenced like any logger."""

from __future__ import annotations

import logging
import sys

import pytest
from tqdm import tqdm

from trainer_client import log


@pytest.fixture(autouse=True)
def level_restored():
    yield
    logging.getLogger("ganwatch").setLevel(logging.INFO)


def test_a_warning_under_a_progress_bar_gets_its_own_line(capsys):
    bar = tqdm(total=10, file=sys.stderr, desc="train", ascii=True)
    bar.update(3)
    log.warn("cannot reach the server; spooling")
    bar.update(1)
    bar.close()
    err = capsys.readouterr().err
    at = err.index("ganwatch: cannot reach the server; spooling\n")
    assert at > 0 and err[at - 1] in "\r\n"   # printed after the bar was cleared, not after it
    assert "train:" in err[at:]                # and the bar drawn again below it


def test_without_a_bar_it_is_one_stderr_line(capsys):
    log.warn("hello")
    assert capsys.readouterr().err == "ganwatch: hello\n"


def test_repeats_are_held_back_and_counted(capsys):
    for i in range(5):
        log.warn(f"sender error {i}", kind="sender error")
    assert capsys.readouterr().err == "ganwatch: sender error 0\n"
    log._last["sender error"] -= log.REPEAT_S + 1      # REPEAT_S later
    log.warn("sender error 5", kind="sender error")
    shown = capsys.readouterr().err
    assert shown.startswith("ganwatch: sender error 5 (4 more like this in the last ")
    log.warn("sender error 6", kind="sender error")
    log.warn("sender error 7", kind="sender error")
    assert capsys.readouterr().err == ""
    log.flush_held()
    assert capsys.readouterr().err == "ganwatch: sender error 7 (2 more like this not shown)\n"


def test_the_logger_can_be_silenced_like_any_other(capsys):
    logging.getLogger("ganwatch").setLevel(logging.ERROR)
    log.warn("not shown")
    assert capsys.readouterr().err == ""
