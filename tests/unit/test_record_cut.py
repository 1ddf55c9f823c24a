"""A record whose run was killed mid-write ends in half a line: reading it yields every whole
line and then says the last was cut; a continued run appends after the whole lines."""

from __future__ import annotations

import pytest

from trainer_client.record import Recorder, RecordError, read_record


def test_the_whole_lines_are_read_and_the_cut_one_is_named(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"step": 0, "d_loss": 1.0}\n{"step": 1, "d_loss": 0.5}\n{"step": 2, "d_')
    lines = list(read_record(path))
    assert [(line.step, line.values) for line in lines[:2]] == [(0, {"d_loss": 1.0}),
                                                               (1, {"d_loss": 0.5})]
    assert lines[2].cut and lines[2].number == 3 and lines[2].step is None


def test_a_corrupt_line_with_lines_after_it_is_still_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"step": 0}\n{"step": 1, "d_\n{"step": 2}\n')
    with pytest.raises(RecordError, match="r.jsonl line 2: not JSON"):
        list(read_record(path))


def test_a_continued_run_appends_after_the_last_whole_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"ganwatch_record": 1}\n{"step": 0, "d_loss": 1.0}\n{"step": 1, "d_lo')
    recorder = Recorder(path, {}, append=True)
    recorder.write({"d_loss": ([1], [0.25], [1000.0])})
    recorder.close()
    lines = list(read_record(path))
    assert [(line.step, line.values, line.cut) for line in lines if line.header is None] == [
        (0, {"d_loss": 1.0}, False), (1, {"d_loss": 0.25}, False)]
