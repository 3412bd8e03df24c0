"""The benchmarks still run end to end (the change engine's on the real broker) and clean up
after themselves.

Not timing tests: they check that every loop ran, that the report holds its ratios, and that
no bench topic is left on the broker. Speed is judged in bench/README.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parents[1]


def bench_topics(bootstrap: str) -> set[str]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
    return {name for name in topics if name.startswith("bench-")}


def run_bench(script: str, bootstrap: str, *args: str) -> str:
    """Run a bench with tiny sizes; returns its report after checking it ran and cleaned up."""
    before = bench_topics(bootstrap)
    run = subprocess.run(
        [sys.executable, f"bench/{script}", "--bootstrap", bootstrap, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert bench_topics(bootstrap) - before == set(), "the bench left topics behind"
    return run.stdout


def test_bench_changes_runs_and_leaves_no_topics(kafka_bootstrap):
    report = run_bench(
        "bench_changes.py",
        kafka_bootstrap,
        *("--n", "3000", "--videos", "700", "--batch", "500", "--rounds", "2", "--warmup", "0"),
    )
    rates = re.findall(r"round \d+\s+(bare|engine):\s+([\d,]+) snapshots/s", report)
    assert sorted(name for name, _ in rates) == ["bare", "bare", "engine", "engine"]
    assert all(int(rate.replace(",", "")) > 0 for _, rate in rates)
    paired = re.search(r"per-round ratios engine / bare\s*: ([\d.]+), ([\d.]+)", report)
    assert paired, report
    assert re.search(r"median of per-round ratios\s*: \d+\.\d\d", report)


def test_bench_state_restore_runs_and_leaves_no_topics(kafka_bootstrap):
    report = run_bench(
        "bench_state_restore.py",
        kafka_bootstrap,
        *("--n", "3000", "--videos", "700", "--rounds", "2"),
    )
    rates = re.findall(r"round \d+\s+(bare|restore):\s+([\d,]+) records/s", report)
    assert sorted(name for name, _ in rates) == ["bare", "bare", "restore", "restore"]
    assert re.search(r"median of per-round ratios restore / bare: \d+\.\d\d", report)


def test_bench_embedded_bus_runs_every_loop():
    run = subprocess.run(
        [sys.executable, "bench/bench_embedded_bus.py", "--n", "2000", "--batch", "200"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    loops = re.findall(r"^([a-z-]+)\s+[\d,]+/s", run.stdout, re.MULTILINE)
    assert loops == ["bare-insert", "bus-produce", "bare-select", "bus-consume", "engine"]
