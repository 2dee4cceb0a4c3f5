# make demo: a trained learner's permutation importance on real data; make test: everything CI runs on the newest
# stack; make test-oldest: pytest on the oldest stack the package supports (.ci/oldest.txt), in a second venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MPLBACKEND := Agg

.PHONY: demo test test-oldest export readme docs bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,demo]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/python examples/penguins.py

export: $(VENV)/.dev-installed
	$(BIN)/nbdev-export
	@changed="$$(git status --porcelain)"; if [ -n "$$changed" ]; then \
	  echo "nbdev-export changed the tree: the exported modules do not match the notebooks"; echo "$$changed"; exit 1; fi

readme:
	$(PYTHON) tools/readme.py

# Re-run the notebooks in place (all, or NBS="nbs/10_permutation.ipynb ..."), saving their outputs, then the README
docs: $(VENV)/.dev-installed
	$(BIN)/python tools/run_nbs.py $(NBS)
	$(BIN)/python tools/readme.py

test: export
	$(BIN)/nbdev-test --n-workers 2
	$(BIN)/python -m pytest -q tests

# The oldest Python the package supports (requires-python): pyenv's 3.10, or a python3.10 on the PATH; failing both,
# python3, which the banner below names (matplotlib 3.5 has no wheel for 3.11 or newer: pip then builds it)
OLDEST := .venv-oldest
OLDEST_PYTHON ?= $(firstword $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.10*/bin/python3.10) \
                  $(shell command -v python3.10 >/dev/null && python3.10 -c '' 2>/dev/null && command -v python3.10) python3)

$(OLDEST)/.installed: pyproject.toml .ci/oldest.txt
	rm -rf $(OLDEST)
	$(OLDEST_PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install --quiet -c .ci/oldest.txt -e '.[test]'
	touch $@

# Not here: test_docs (the notebooks' saved outputs, checked by `make test`; fastcore.nbio is newer than fastai 2.7.12 allows) and test_golden
# (numbers recorded on the newest stack: another torch trains another network)
test-oldest: $(OLDEST)/.installed
	@$(OLDEST)/bin/python -c "import sys, fastai, torch, numpy, pandas, scipy, matplotlib; print('oldest stack: Python', \
	  sys.version.split()[0], *(f'{m.__name__} {m.__version__}' for m in (fastai, torch, numpy, pandas, scipy, matplotlib)))"
	$(OLDEST)/bin/python -m pytest -q tests --ignore=tests/test_docs.py --ignore=tests/test_golden.py

bench: $(VENV)/.dev-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/pip install --quiet --no-deps pyartemis  # its pins (numpy < 2, pandas < 2) would downgrade the stack; it runs on it as it is
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/engine_memory.py
	$(BIN)/python benchmarks/shapley.py
	$(BIN)/python benchmarks/sage_bench.py
	$(BIN)/python benchmarks/association.py
	$(BIN)/python benchmarks/batch_size.py
	$(BIN)/python benchmarks/blind_spots.py
	$(BIN)/python benchmarks/viann_overhead.py
	$(BIN)/python benchmarks/viann_validation.py
	$(BIN)/python benchmarks/weights.py
	$(BIN)/python benchmarks/ale.py
	$(BIN)/python benchmarks/interactions.py --write
