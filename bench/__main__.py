"""``python -m bench``: run every benchmark and write ``bench/RESULTS.md`` and ``bench/results.json``.

``python -m bench triggerer ...``: the real-triggerer benchmark (``bench/triggerer.py``).
"""

import sys

if sys.argv[1:2] == ["triggerer"]:
    from bench.triggerer import main as triggerer_main

    triggerer_main(sys.argv[2:])
else:
    from bench.run import main

    main()
