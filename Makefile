# Two commands a newcomer needs:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The exact versions behind the committed results (ranges live in pyproject.toml).
INSTALL = $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: run test bench repro-check lock clean-venv

# The venv is rebuilt whenever the ranges or the pinned versions change.
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(INSTALL) -e '.[pipeline,test]'
	touch $@

## run: set up .venv and run the whole DVC pipeline on the embedded corpus
# The stages' cmd is `python -m stages.NAME`: the venv's python must come first on PATH.
run: $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

## test: set up .venv and run the test suite
test: $(BIN)/.installed
	$(BIN)/ruff check src stages tests bench
	$(BIN)/python -m pytest -q

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

clean-venv:
	rm -rf $(VENV)
