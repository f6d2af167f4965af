"""``python -m bench``: run the benchmark suite (see :mod:`bench._suite` for the options)."""

from bench._suite import main

raise SystemExit(main())
