"""The benchmark of issue 7: ``python -m bench`` (``make bench``).

Against the emulator served on loopback in its own process (20 ms added to every request,
1 s of indexing per document), in one run:

- ``baseline`` vs ``push``: the handoff guide's serial algorithm (implemented here with
  ``requests``) against ``kb-sync push`` for 40 new documents, wall time and ratio;
- ``requests``: what a run with nothing to do and a 1-document update cost, counted from the
  emulator's call log, by endpoint, on a 400- and a 50-document folder;
- ``scale``: ``kb-sync plan`` over 100, 500 and 2,000 documents, wall time and peak memory.

Prints a table and writes ``reports/bench.json``. See ``docs/performance.md``.
"""
