# make demo: a trained learner's permutation importance on real data; make test: everything CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MPLBACKEND := Agg

.PHONY: demo test export readme docs bench

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

bench: $(VENV)/.dev-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/shapley.py
	$(BIN)/python benchmarks/sage_bench.py
	$(BIN)/python benchmarks/association.py
	$(BIN)/python benchmarks/batch_size.py
	$(BIN)/python benchmarks/blind_spots.py
	$(BIN)/python benchmarks/viann_overhead.py
	$(BIN)/python benchmarks/viann_validation.py
	$(BIN)/python benchmarks/interactions.py --write
