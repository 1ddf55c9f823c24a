"""The unit tests run without starting a process or serving a socket: a test here that tries
fails, naming what it tried (it belongs in tests/api or tests/e2e)."""

from __future__ import annotations

import socket
import subprocess

import pytest


@pytest.fixture(autouse=True)
def no_servers(monkeypatch):
    def refuse(what):
        def refused(*args, **kwargs):
            raise AssertionError(f"a unit test {what}: unit tests start no process and serve "
                                 "no socket; move it to tests/api or tests/e2e")
        return refused

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("started a process"))
    monkeypatch.setattr(socket.socket, "bind", refuse("bound a socket"))
    monkeypatch.setattr(socket.socket, "listen", refuse("listened on a socket"))
