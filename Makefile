# Two commands a newcomer needs:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The exact versions behind the committed results (ranges live in pyproject.toml).
INSTALL = $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: run test docs typecheck bench repro-check lock dvc-deps clean-venv

# The venv is rebuilt whenever the ranges or the pinned versions change.
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(INSTALL) -e '.[pipeline,test,docs]'
	touch $@

## run: set up .venv and run the whole DVC pipeline on the embedded corpus
# `w2v check` first: a dvc.lock left empty by a killed dvc gets its fix named instead of a schema error.
# The stages' cmd is `python -m stages.NAME`: the venv's python must come first on PATH.
run: $(BIN)/.installed
	$(BIN)/w2v check
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

## test: set up .venv; lint, type-check the library, build the manual (warnings fail) and run the test suite
test: $(BIN)/.installed typecheck docs
	$(BIN)/ruff check src stages tests bench docs
	$(BIN)/python -m pytest -q

## typecheck: mypy over the library (src/w2v ships py.typed; settings in pyproject.toml)
typecheck: $(BIN)/.installed
	$(BIN)/mypy

## docs: build the manual into docs/_build/html (offline; any warning, such as a broken link, fails)
docs: $(BIN)/.installed
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

## repro-check: run the pipeline twice from clean copies and compare the hash of every output
repro-check: $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/w2v repro-check

## bench: speed figures (tokenize MB/s, pairs/s, peak RSS, training words/s against gensim)
bench: $(BIN)/.installed
	$(BIN)/python bench/tokenize_bench.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro vocab
	$(BIN)/python bench/pairs_bench.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro pairs
	$(BIN)/python bench/train_bench.py

## lock: re-pin constraints.txt to what the venv has now (after changing a range in pyproject.toml)
lock: $(BIN)/.installed
	{ sed -n '1,3p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

## dvc-deps: rewrite each stage's code dependencies in dvc.yaml from the modules its command imports
dvc-deps: $(BIN)/.installed
	$(BIN)/python -c "from tests.test_dvc_yaml import write_code_dependencies; write_code_dependencies()"

clean-venv:
	rm -rf $(VENV)
