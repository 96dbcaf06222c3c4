#!/usr/bin/env python3
"""The runbook's command, kept verbatim: `python3 elevenlabs_sync_v2.py --dir quarters ...`.

A thin shim onto `kb-sync push` (same options, same exit codes).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sync.shim import BAD_INPUT, load_main  # noqa: E402

if __name__ == "__main__":
    main = load_main("elevenlabs_sync_v2.py")
    sys.exit(BAD_INPUT if main is None else main(["push", *sys.argv[1:]]))
