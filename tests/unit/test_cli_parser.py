"""The ganwatch parser's errors, without a server: one line on stderr, exit 2, no usage dump."""

from __future__ import annotations

import pytest

from ganwatch.cli import main


@pytest.mark.parametrize("argv", [
    ["bogus"],
    [],
    ["serve", "--port", "not-a-number"],
    ["token", "create"],
    ["token", "create", "--scope", "root"],
    ["webhook", "add", "http://127.0.0.1:9/x", "--format", "email"],
    ["replay"],
])
def test_a_bad_command_line_is_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("ganwatch: error: ") and err.count("\n") == 1
    assert "Traceback" not in err and "usage:" not in err


def test_rules_that_are_not_a_json_object_are_refused_before_any_request(tmp_path, capsys):
    record = tmp_path / "run.jsonl"
    record.write_text("")
    assert main(["replay", str(record), "--rules", "[1, 2]"]) == 2
    assert capsys.readouterr().err.startswith("ganwatch: error: --rules must be a JSON object")
