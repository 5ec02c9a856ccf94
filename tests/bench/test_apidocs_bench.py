"""bench/apidocs_bench.py runs and reports its figures (never judged on speed here), and the bench report shows
them with their target."""
from __future__ import annotations

import json
import subprocess
import sys

from bench import report
from bench.apidocs_bench import ROOT, describe, run


def test_a_short_run_reports_the_three_figures():
    result = run(2000)
    assert result["ok"] is True
    assert {"not_sampled_us", "sampled_us", "learned_us", "target_us", "pass"} <= set(result)
    assert result["learned_us"] > 0  # learning parses and merges: never free
    assert "not sampled" in describe(result)


def test_the_json_line_is_what_the_harness_reads():
    done = subprocess.run([sys.executable, "-m", "bench.apidocs_bench", "--json", "--number", "2000"],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(done.stdout.strip().splitlines()[-1])["ok"] is True


def test_the_report_has_a_target_line_for_it():
    figures = {"ok": True, "not_sampled_us": 0.08, "sampled_us": 4.7, "learned_us": 270.0, "target_us": 20.0,
               "pass": True, "request_bytes": 202, "response_bytes": 1288}
    check = report.sampler_target(figures)
    assert (check["pass"], check["shown"], check["limit"]) == (True, "0.080", "<= 20")
    assert report.sampler_target({"ok": False, "reason": "x"})["pass"] is None
    assert "+4.70 µs" in report.sampler_text(figures)
