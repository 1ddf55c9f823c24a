"""The client's settings: an explicit init() argument wins, then the environment, then the
default; a variable that cannot be read is a warning and the default; and the README's one
table names every variable, the client's and the server's."""

from __future__ import annotations

import re

import pytest

import trainer_client
from monitor.settings import Settings
from tests.support import ROOT
from trainer_client.settings import SETTINGS


@pytest.fixture
def offline(tmp_path):
    runs = []

    def start(**kwargs):
        run = trainer_client.init("settings", offline=True, spool_dir=tmp_path, **kwargs)
        runs.append(run)
        return run
    yield start
    for run in runs:
        run.finish(timeout=5.0)


def test_an_explicit_argument_beats_the_environment(offline, monkeypatch):
    monkeypatch.setenv("GANWATCH_FLUSH_INTERVAL", "7")
    monkeypatch.setenv("GANWATCH_EXIT_TIMEOUT", "9")
    run = offline(flush_interval=0.5, exit_timeout=2.0)
    assert (run.flush_interval, run.exit_timeout) == (0.5, 2.0)


def test_the_environment_beats_the_default(offline, monkeypatch):
    monkeypatch.setenv("GANWATCH_FLUSH_INTERVAL", "7")
    monkeypatch.setenv("GANWATCH_EXIT_TIMEOUT", "9")
    run = offline()
    assert (run.flush_interval, run.exit_timeout) == (7.0, 9.0)
    monkeypatch.delenv("GANWATCH_FLUSH_INTERVAL")
    monkeypatch.delenv("GANWATCH_EXIT_TIMEOUT")
    assert (offline().flush_interval, offline().exit_timeout) == (1.0, 30.0)


def test_a_variable_that_cannot_be_read_warns_and_gives_the_default(offline, monkeypatch,
                                                                     capfd):
    monkeypatch.setenv("GANWATCH_FLUSH_INTERVAL", "soon")
    monkeypatch.setenv("GANWATCH_EXIT_TIMEOUT", "-1")
    run = offline()
    assert (run.flush_interval, run.exit_timeout) == (1.0, 30.0)
    err = capfd.readouterr().err
    assert "GANWATCH_FLUSH_INTERVAL='soon' cannot be read" in err
    assert "GANWATCH_EXIT_TIMEOUT='-1' cannot be read" in err


def test_the_readme_table_names_every_variable():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(GANWATCH_[A-Z0-9_]+)`", section, re.M))
    client = {s.env for s in SETTINGS.values()}
    server = {f"GANWATCH_{name.upper()}" for name in Settings.model_fields}
    assert client | server <= listed, sorted((client | server) - listed)
    assert listed <= client | server | {"GANWATCH_CACHE", "GANWATCH_TEST_DATABASE_URL"}, \
        sorted(listed - client - server)
