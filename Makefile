# Shortcuts; the commands themselves are documented in bench/_suite.py and the README.
PYTHON ?= python

.PHONY: bench bench-quick

# Every benchmark (under 10 minutes on 2 cores); writes bench/results/<UTC time>.json and latest.json.
bench:
	$(PYTHON) -m bench

# Small sizes, a minute or less; writes bench/results/<UTC time>-quick.json (not tracked).
bench-quick:
	$(PYTHON) -m bench --quick
