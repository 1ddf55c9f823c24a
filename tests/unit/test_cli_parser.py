"""The command line's errors, without a server: one line on stderr, never a usage dump or a
traceback; a bad argument exits 2. Every command, and the trainer's own parser, speak through
trainer_client.cli (one parser class, one error printer)."""

from __future__ import annotations

import ast
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ganwatch.cli import DEFAULT_PORT, main
from trainer_client.cli import OneLineParser, fail
from trainer_client.run import DEFAULT_SERVER

ROOT = Path(__file__).resolve().parents[2]


def _one_line(err: str, prefix: str = "ganwatch: error: ") -> None:
    assert err.startswith(prefix) and err.count("\n") == 1, err
    assert "Traceback" not in err and "usage:" not in err


@pytest.mark.parametrize("argv", [
    ["bogus"],
    [],
    ["serve", "--port", "not-a-number"],
    ["serve", "--bogus"],
    ["migrate", "--bogus"],
    ["token"],
    ["token", "create"],
    ["token", "create", "--scope", "root"],
    ["token", "list", "extra"],
    ["token", "revoke", "not-an-id"],
    ["demo", "--steps", "many"],
    ["demo", "--port", "http"],
    ["replay"],
    ["replay", "a.jsonl", "--bogus"],
    ["import"],
    ["import", "metrics.csv", "--bogus"],
    ["webhook"],
    ["webhook", "add"],
    ["webhook", "add", "http://127.0.0.1:9/x", "--format", "email"],
    ["webhook", "add", "http://127.0.0.1:9/x", "--min-severity", "info"],
    ["webhook", "list", "extra"],
    ["webhook", "remove"],
    ["webhook", "test", "not-an-id"],
    ["webhook", "log", "1", "--limit", "all"],
])
def test_a_bad_command_line_is_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    _one_line(err)
    assert err.endswith(" (see --help)\n")


def test_rules_that_are_not_a_json_object_are_refused_before_any_request(tmp_path, capsys):
    record = tmp_path / "run.jsonl"
    record.write_text("")
    assert main(["replay", str(record), "--rules", "[1, 2]"]) == 2
    assert capsys.readouterr().err.startswith("ganwatch: error: --rules must be a JSON object")


def test_rules_that_are_not_json_are_one_line(tmp_path, capsys):
    record = tmp_path / "run.jsonl"
    record.write_text("")
    assert main(["replay", str(record), "--rules", "{mode_collapse"]) == 2
    _one_line(capsys.readouterr().err, "ganwatch: error: --rules is not JSON")


def test_a_replay_of_nothing_there_is_one_line(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing")]) == 2
    _one_line(capsys.readouterr().err, "ganwatch: error: no record file or log at ")


def test_a_record_that_cannot_be_read_is_one_line(tmp_path, capsys):
    record = tmp_path / "run.jsonl"
    record.write_text("not json\n")
    assert main(["replay", str(record)]) == 2
    _one_line(capsys.readouterr().err)


def test_a_server_setting_out_of_range_is_one_line(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    _one_line(capsys.readouterr().err, "ganwatch: error: setting port: ")


def test_the_trainers_parser_names_the_trainer(capsys):
    from trainer_client.dcgan.config import parse_args

    for argv in (["--steps", "many"], ["--dataset", "nope"], ["--bogus"]):
        with pytest.raises(SystemExit) as exit_:
            parse_args(argv)
        assert exit_.value.code == 2
        _one_line(capsys.readouterr().err, "python -m trainer_client.dcgan: error: ")


def test_subcommands_speak_with_their_parents_name_and_hint(capsys):
    parser = OneLineParser(prog="tool", hint=" (try again)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("go").add_argument("--n", type=int)
    with pytest.raises(SystemExit):
        parser.parse_args(["go", "--n", "x"])
    assert capsys.readouterr().err == "tool: error: argument --n: invalid int value: 'x' " \
                                      "(try again)\n"
    fail("tool", "it broke")
    assert capsys.readouterr().err == "tool: error: it broke\n"


def test_the_server_listens_where_the_client_looks_by_default():
    from monitor.settings import Settings

    assert DEFAULT_PORT == urlsplit(DEFAULT_SERVER).port
    assert Settings.model_fields["port"].default == DEFAULT_PORT
    assert Settings.model_fields["host"].default == urlsplit(DEFAULT_SERVER).hostname


def _string_constants(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_errors_are_printed_in_one_place_and_the_default_url_is_written_once():
    """Only trainer_client.cli writes "error:" lines, and only trainer_client.settings spells out
    the default server's address."""
    printers, urls = [], []
    for package in ("ganwatch", "trainer_client"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            for line, text in _string_constants(path):
                if ": error:" in text and name != "trainer_client/cli.py":
                    printers.append(f"{name}:{line}")
                if "8765" in text and name != "trainer_client/settings.py":
                    urls.append(f"{name}:{line}")
    assert printers == []
    assert urls == []
