"""tests.failures: `make test` names each stage's failed tests again at its end."""

from __future__ import annotations

from tests.failures import failures, main

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" tests="3">
<testcase classname="tests.e2e.eventing.test_e2e_batch" name="test_burst" time="3.1">
  <failure message="AssertionError: assert (16 + 1) &lt;= 15&#10;more lines">trace</failure>
</testcase>
<testcase classname="tests.e2e.faults.test_services_down" name="test_redis[x]" time="1.0">
  <error message="failed on setup with &quot;RuntimeError: no Redis&quot;">trace</error>
</testcase>
<testcase classname="tests.unit.test_ok" name="test_fine" time="0.1"/>
</testsuite></testsuites>
"""


def test_each_failed_or_erroring_test_is_named_with_the_first_line_of_its_error(tmp_path):
    (tmp_path / "postgres.xml").write_text(REPORT)
    assert failures(tmp_path / "postgres.xml") == [
        "tests.e2e.eventing.test_e2e_batch::test_burst: AssertionError: assert (16 + 1) <= 15",
        "tests.e2e.faults.test_services_down::test_redis[x]: "
        'failed on setup with "RuntimeError: no Redis"',
    ]


def test_the_summary_names_the_stage_and_says_nothing_when_all_passed(tmp_path, capsys):
    (tmp_path / "postgres.xml").write_text(REPORT)
    passed = REPORT.replace("<failure", "<skipped").replace("</failure", "</skipped")
    (tmp_path / "unit.xml").write_text(
        passed.replace("<error", "<skipped").replace("</error", "</skipped")
    )
    assert main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "== make test: failed in stage postgres:"
    assert len(printed) == 3
    assert not any("unit" in line for line in printed)


def test_a_truncated_report_is_said_to_be_unreadable(tmp_path):
    (tmp_path / "sqlite.xml").write_text(REPORT[:200])
    [line] = failures(tmp_path / "sqlite.xml")
    assert line.startswith("(unreadable report sqlite.xml:")
