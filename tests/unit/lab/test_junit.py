"""The closing summary line over several junit files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.junit import main, totals

pytestmark = pytest.mark.unit

SUITE = (
    '<testsuites><testsuite tests="{t}" failures="{f}" errors="{e}" skipped="{s}"/></testsuites>'
)


def test_totals_add_up_and_missing_files_fail(tmp_path: Path) -> None:
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_text(SUITE.format(t=10, f=1, e=1, s=2))
    b.write_text(SUITE.format(t=5, f=0, e=0, s=0))
    assert totals([a, b]) == (11, 2, 2)
    assert totals([a, tmp_path / "missing.xml"]) == (6, 3, 2)


def test_exit_status_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = tmp_path / "ok.xml"
    ok.write_text(SUITE.format(t=3, f=0, e=0, s=1))
    assert main([str(ok)]) == 0
    assert capsys.readouterr().out == "total: 2 passed, 0 failed, 1 skipped\n"
    assert main([str(tmp_path / "none.xml")]) == 1


def test_no_skips_fails_on_a_skip_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite tests="2" failures="0" errors="0" skipped="1">'
        '<testcase classname="tests.unit.docgen.test_manpage" name="test_mandoc_lint">'
        '<skipped message="mandoc is not installed"/></testcase>'
        '<testcase classname="tests.unit.test_x" name="test_y"/>'
        "</testsuite></testsuites>"
    )
    assert main([str(junit)]) == 0
    capsys.readouterr()
    assert main(["--no-skips", str(junit)]) == 1
    out = capsys.readouterr().out
    assert (
        "skipped (not allowed here): tests.unit.docgen.test_manpage::test_mandoc_lint: "
        "mandoc is not installed" in out
    )
    assert out.endswith("total: 1 passed, 0 failed, 1 skipped\n")
