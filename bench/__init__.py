"""The benchmark of issues 7 and 16: ``python -m bench`` (``make bench``).

Against the emulator served on loopback in its own process (20 ms added to every request,
1 s of indexing per document), in one run, medians of ``BENCH_REPEATS`` (3) runs:

- ``baseline`` vs ``push``: the handoff guide's serial algorithm (implemented here with
  ``requests``; ``BENCH_BASELINE_REPEATS`` runs, 1 by default: it is 45 s of sleeping) against
  ``kb-sync push`` for 40 new documents (default concurrency, 1 and 8), wall time and ratio;
- ``requests``: what a run with nothing to do and a 1-document update cost, counted from the
  emulator's call log, by endpoint, on a 400- and a 50-document folder;
- ``scale``: ``kb-sync push`` of 100, 500 and 2,000 new documents (5,000 with
  ``BENCH_5000=1``) as a child process: wall, time per document, requests, peak RSS;
- ``limited``: 40 new documents under a server limit of 4 requests in flight,
  ``--concurrency 16`` against ``--concurrency 4`` (``bench/limited.py``, when present).

Prints the tables and writes ``reports/bench.json``. See ``docs/performance.md``.
"""
