"""``python -m bench``: run every benchmark and write ``bench/RESULTS.md`` and ``bench/results.json``."""

from bench.run import main

main()
