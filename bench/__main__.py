"""``python -m bench``: run the whole benchmark, print the table, write reports/bench.json."""

import sys

from bench.run import main

if __name__ == "__main__":
    sys.exit(main())
