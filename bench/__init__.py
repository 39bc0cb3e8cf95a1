"""Benchmarks: scripts run one by one (`make bench`), each printing its figures against a raw baseline."""
