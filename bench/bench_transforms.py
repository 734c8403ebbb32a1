"""Request transforms: what rendering in a child process costs per render, side by side with
rendering in-process, over the same templates in the same run.

    python -m bench.bench_transforms [--renders 2000]

A child process (triggers.render_process) gives the hard deadline and the memory limit; the
price is a pipe round trip with the variables as JSON. Medians land in
bench/results/transforms.json.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import common
from triggers.render_process import RenderPool, render_isolated
from triggers.templating import render

PAYLOAD = {
    "new": {"id": 42, "status": "paid", "total": "19.90", "items": list(range(20))},
    "old": {"id": 42, "status": "new", "total": "19.90", "items": list(range(20))},
}
TEMPLATES = {
    "header": "{{ data.new.status | upper }}",
    "url": "https://hooks.example.com/orders/{{ data.new.id }}?s={{ data.new.status }}",
    "body": (
        '{"order": {{ data.new.id }}, "status": {{ data.new.status | tojson }}, '
        '"items": [{% for i in data.new["items"] %}{{ i * 2 }}'
        "{% if not loop.last %},{% endif %}{% endfor %}]}"
    ),
}
LIMITS = {"max_chars": 1024 * 1024, "time_s": 0.25}


def timings(function, source: str, renders: int, **extra) -> list[float]:
    """Milliseconds of each of `renders` renders of `source`."""
    variables = {"data": PAYLOAD, "type": "DB_UPDATE"}
    function(source, variables, **LIMITS, **extra)  # compiled, and a child running
    found = []
    for _ in range(renders):
        started = time.perf_counter()
        function(source, variables, **LIMITS, **extra)
        found.append((time.perf_counter() - started) * 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--renders", type=int, default=2000)
    args = parser.parse_args()
    results = {}
    pool = RenderPool()
    for name, source in TEMPLATES.items():
        inline = timings(render, source, args.renders)
        isolated = timings(render_isolated, source, args.renders, memory_mb=256, pool=pool)
        results[name] = {
            "in_process_median_ms": round(statistics.median(inline), 4),
            "child_process_median_ms": round(statistics.median(isolated), 4),
            "child_process_p99_ms": round(common.percentile(isolated, 99), 4),
            "added_median_ms": round(statistics.median(isolated) - statistics.median(inline), 4),
        }
        print(name, results[name])
    pool.stop(10)
    path = common.write_result("transforms", {"renders": args.renders, "templates": results})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
