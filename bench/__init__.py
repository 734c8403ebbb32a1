"""Benchmarks of Eventing; each writes its figures under bench/results/."""
