"""`make bench`: run every benchmark, then write bench/results/results.md and PNG plots.

Each benchmark runs in its own process (a fresh Django and worker set-up) against the
PostgreSQL + Redis servers `make bench` starts; results land in bench/results/*.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.common import RESULTS, ROOT

SUITE = {
    "write": ["bench.bench_write"],
    "throughput": ["bench.bench_throughput"],
    "slow": ["bench.bench_slow"],
    "latency": ["bench.bench_latency"],
    "schedule": ["bench.bench_schedule"],
    "scale": ["bench.bench_scale"],
    "memory": ["bench.bench_memory"],
    "storage": ["bench.bench_storage"],
    "api": ["bench.bench_api"],
    "admin": ["bench.bench_admin"],
    "statements": ["bench.bench_statements"],
    "capture": ["bench.bench_capture"],
    "transforms": ["bench.bench_transforms"],
    # Add `--baseline <checkout>` by hand to compare unordered throughput with older code.
    "ordering": ["bench.bench_ordering"],
    "owners": ["bench.bench_owners"],
}


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table() -> str:
    """The Markdown summary of whatever results exist, with targets."""
    rows = ["| measure | result | target |", "| --- | --- | --- |"]
    if w := load("write_overhead"):
        rows.append(f"| save() with trigger, autocommit | {w['ratio_autocommit']:.2f}× | ≤ 1.5× |")
        rows.append(f"| 100 saves in one transaction | {w['ratio_tx100']:.2f}× | ≤ 2.0× |")
        rows.append(
            f"| save() of a model without trigger | {w['ratio_untracked']:.3f}× | ≤ 1.05× |"
        )
    if t := load("throughput"):
        rows.append(
            f"| throughput, fast receiver ({t['events']} events) | "
            f"{t['median_eventing_per_s']:.0f}/s | ≥ 1,000/s |"
        )
        rows.append(
            f"| vs bare requests loop ({t['processes']} processes) | "
            f"{t['median_ratio']:.2f}× ({t['median_bare_per_s']:.0f}/s bare) | ≥ 0.5× |"
        )
    if o := load("ordering"):
        medians = o["medians_per_s"]
        keyed = f"ordered_{o['keys']}_keys"
        rows.append(
            f"| ordered over {o['keys']} keys vs unordered ({o['events']} events) | "
            f"{o['ordered_vs_unordered']:.2f}× ({medians[keyed]:.0f}/s) | ≥ 0.5× |"
        )
        if "unordered_vs_baseline" in o:
            rows.append(
                f"| unordered with ordering vs before it | {o['unordered_vs_baseline']:.2f}× "
                f"({medians['unordered']:.0f} vs {medians['baseline_unordered']:.0f}/s) | ≈ 1× |"
            )
    if s := load("slow_receivers"):
        run = s["runs"][0]
        seconds = s.get("median_seconds", run["seconds"])
        rows.append(
            f"| 2,000 events, 200 ms receiver ({run['pool']} × {run['concurrency']}, median) | "
            f"{seconds:.1f} s | ≤ 10 s |"
        )
    if st := load("statements"):
        rows.append(
            f"| SQL statements: one event / a batch of 50 delivered | "
            f"{st['one_event_success']} / {st['batch_of_50_success']} | ≤ 2 / ≤ 2 |"
        )
    if lat := load("latency"):
        rows.append(
            f"| latency at {lat['rate_per_s']:.0f}/s "
            f"(worker processes: {lat.get('processes', 1)}), p50 / p99 | "
            f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} ms | ≤ 15 / ≤ 100 ms |"
        )
    if sch := load("schedule"):
        rows.append(
            f"| scheduled 1–120 s ahead: early / p99 late | {sch['early']} / "
            f"{sch['p99_late_ms']:.0f} ms | 0 / ≤ 1,000 ms |"
        )
    if sc := load("scale"):
        rows.append(
            f"| sweeper pass with {sc['rows']:,} rows | {sc['sweep_ms_full']:.1f} ms | ≤ 50 ms |"
        )
        rows.append(f"| emit with {sc['rows']:,} rows vs empty | {sc['emit_ratio']:.2f}× | ≈ 1× |")
    if m := load("memory"):
        rows.append(
            f"| worker RSS growth {m['samples'][0][0]:,} → {m['samples'][-1][0]:,} "
            f"deliveries | {m['growth'] * 100:+.1f} % | ≤ 10 % |"
        )
    if c := load("capture"):
        if w := c.get("writes"):
            rows.append(
                "| database capture: save() with trigger, autocommit / 100-row transaction | "
                f"{w['ratio_autocommit_database']:.2f}× / {w['ratio_tx100_database']:.2f}× "
                f"(signals {w['ratio_autocommit_signals']:.2f}× / "
                f"{w['ratio_tx100_signals']:.2f}×) | ≤ 1.3× / ≤ 1.5× |"
            )
        if u := c.get("update"):
            rows.append(
                f"| database capture: {u['rows']:,}-row update() with trigger vs without | "
                f"{u['ratio']:.1f}× ({u['median_ms']['with']:.0f} vs "
                f"{u['median_ms']['without']:.0f} ms) | ≤ 2× |"
            )
        if lat := c.get("latency"):
            db, sig = lat["database"], lat["signals"]
            rows.append(
                f"| database capture: latency at {lat['rate_per_s']:.0f}/s, p50 / p99 | "
                f"{db['p50_ms']:.1f} / {db['p99_ms']:.1f} ms (signals {sig['p50_ms']:.1f} / "
                f"{sig['p99_ms']:.1f}) | ≤ 10 / ≤ 50 ms |"
            )
        if t := c.get("throughput"):
            med = t["median_per_s"]
            rows.append(
                f"| database capture: throughput, writes to receipts ({t['events']:,}) | "
                f"{med['database']:.0f}/s vs signals {med['signals']:.0f}/s | ≥ signals |"
            )
    machine = next(
        (r["machine"] for r in map(load, ["throughput", "write_overhead", "latency"]) if r), {}
    )
    head = (
        f"Machine: {machine.get('cpus')} CPUs, Python {machine.get('python')}, "
        f"{machine.get('database')} + {machine.get('broker')}; database, broker, workers and "
        "receiver all on this one machine.\n\n"
    )
    return head + "\n".join(rows) + "\n"


def plots() -> None:
    """PNG plots of throughput and latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if t := load("throughput"):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.bar(
            ["bare requests loop", "Eventing"],
            [t["median_bare_per_s"], t["median_eventing_per_s"]],
            color=["#999", "#2a7"],
        )
        ax.set_ylabel("events / s")
        ax.set_title(f"Throughput to a fast receiver ({t['processes']} processes)")
        fig.tight_layout()
        fig.savefig(RESULTS / "throughput.png", dpi=100)
        plt.close(fig)
    series = [
        ("latency", "latencies_ms", "commit → receipt (ms)"),
        ("schedule", "lateness_ms", "arrival − due (ms)"),
    ]
    for name, key, label in series:
        if data := load(name):
            values = data[key]
            fig, ax = plt.subplots(figsize=(5, 3.5))
            ax.plot(values, [i / len(values) for i in range(len(values))], color="#27a")
            ax.set_xlabel(label)
            ax.set_ylabel("fraction of events")
            ax.set_title(f"{name.capitalize()} CDF ({len(values)} events)")
            ax.grid(alpha=0.3)
            fig.tight_layout()
            fig.savefig(RESULTS / f"{name}.png", dpi=100)
            plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help=f"benchmarks to run: {', '.join(SUITE)}")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    unknown = sorted(set(args.only) - set(SUITE))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(SUITE)}")
    if not args.report_only:
        for name in args.only or SUITE:
            print(f"== {name}", flush=True)
            code = subprocess.call([sys.executable, "-m", *SUITE[name]], cwd=ROOT)
            if code:
                print(f"{name} failed with exit code {code}", file=sys.stderr)
    (RESULTS / "results.md").write_text(table())
    plots()
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
