"""kit.progress: a bar on a terminal, plain lines at most every few seconds elsewhere, counts and step names only."""

from __future__ import annotations

import io

import pytest

from kit.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_a_terminal_plain_lines_with_counts_and_the_step() -> None:
    out = io.StringIO()
    with Progress("backup", unit="steps", total=3, stream=out, every=0) as progress:
        progress.doing("copying the intake database")
        progress.advance()
        progress.advance(2)

    lines = out.getvalue().splitlines()
    assert lines[0] == "backup: 1 of 3 steps (33%), copying the intake database"
    assert lines[-1].startswith("backup: 3 of 3 steps (100%), done after ")
    assert "\x1b" not in out.getvalue()  # nothing for a terminal in a log file


def test_plain_lines_are_periodic_not_one_per_advance() -> None:
    out = io.StringIO()
    with Progress("keys rotate", unit="data keys", total=1000, stream=out, every=3600) as progress:
        for _ in range(1000):
            progress.advance()

    assert len(out.getvalue().splitlines()) == 1  # the job was quicker than `every`: the final line only
    assert out.getvalue().startswith("keys rotate: 1000 of 1000 data keys (100%), done after ")


def test_a_job_that_fails_says_stopped_and_how_far_it_got() -> None:
    out = io.StringIO()
    with pytest.raises(RuntimeError), Progress("names reindex", unit="cases", total=10, stream=out) as progress:
        progress.advance(4)
        raise RuntimeError

    assert out.getvalue().startswith("names reindex: 4 of 10 cases (40%), stopped after ")


def test_more_than_the_total_grows_the_total_and_no_total_counts_alone() -> None:
    out = io.StringIO()
    with Progress("keys rotate", unit="data keys", total=2, stream=out) as progress:
        progress.advance(3)  # a case opened under the old key while the rotation ran
    with Progress("count", unit="rows", stream=out) as progress:
        progress.advance(7)

    first, second = out.getvalue().splitlines()
    assert first.startswith("keys rotate: 3 of 3 data keys (100%), done")
    assert second.startswith("count: 7 rows, done")


def test_on_a_terminal_a_bar() -> None:
    out = Terminal()
    with Progress("keys rotate", unit="data keys", total=3, stream=out) as progress:
        progress.advance(3)

    shown = out.getvalue()
    assert "━" in shown and "3/3" in shown and "keys rotate" in shown
    assert "done after" not in shown  # the bar is the report


def test_silent_shows_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress.silent() as progress:
        progress.set_total(2)
        progress.doing("anything")
        progress.advance(2)

    assert capsys.readouterr() == ("", "")
