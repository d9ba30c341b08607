# Two entry points, both working on a fresh clone with only Python and pip:
#   make bench   set up, then run the main job
#   make test    set up, then run the tests
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test bench compare clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[all]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest

compare: setup
	$(PY) -m lstm_numba compare --cell lstm --hidden 256 --batch 16 --seq-len 128

bench: compare

clean:
	rm -rf $(VENV) .asv reports/*.png reports/*.svg reports/*.html reports/*.md
