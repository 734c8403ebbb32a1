"""Memory: worker RSS after 100,000 deliveries within 10 % of its RSS after 10,000."""

from __future__ import annotations

import argparse
import time

from bench import common


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--checkpoint", type=int, default=10_000)
    args = parser.parse_args()
    common.setup_django()
    from bench.bench_throughput import queue_events

    receiver, port = common.start_receiver()
    common.reset_events()
    worker = common.worker(concurrency=8, beat=False)
    samples = []
    try:
        queue_events(f"http://127.0.0.1:{port}/", args.checkpoint)
        common.wait_count(port, args.checkpoint, timeout_s=600)
        time.sleep(1)  # let in-flight bookkeeping settle before reading RSS
        samples.append((args.checkpoint, rss_kib(worker.pid)))
        delivered = args.checkpoint
        while delivered < args.deliveries:
            batch = min(args.checkpoint * 3, args.deliveries - delivered)
            from eventing.models import EventLog, InvocationLog
            from triggers.models import Trigger

            # Keep the tables small: memory, not table growth, is under test.
            InvocationLog.objects.all().delete()
            EventLog.objects.all().delete()
            Trigger.objects.all().delete()
            queue_events(f"http://127.0.0.1:{port}/", batch)
            delivered += batch
            common.wait_count(port, delivered, timeout_s=1200)
            time.sleep(1)
            samples.append((delivered, rss_kib(worker.pid)))
            print(samples[-1], flush=True)
    finally:
        worker.stop()
        receiver.terminate()
    first, last = samples[0][1], samples[-1][1]
    result = {
        "samples": samples,
        "rss_kib_at_first": first,
        "rss_kib_at_last": last,
        "growth": last / first - 1,
    }
    common.write_result("memory", result)
    return result


if __name__ == "__main__":
    print(main())
