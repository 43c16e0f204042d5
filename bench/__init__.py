"""Vellum's benchmark, run by `make bench` (`python -m bench`).

One run starts a private SeaweedFS S3 server and a real `vellum serve` child, measures
plain boto3 making the same S3 calls with no Vellum code around them (the ceiling) and then
Vellum's HTTP API at equal concurrency, and reports each Vellum figure as a ratio to its
ceiling measured in the same run on the same machine. CPU is attributed per process
from /proc. See docs/performance.md.
"""
