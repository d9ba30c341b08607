# Two entry points, both working on a fresh clone with only Python and pip:
#   make bench   set up, then run the main job
#   make test    set up, then run the tests
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup warm-cache test bench compare clean clean-cache asv-machine asv-run publish report preview

setup: $(STAMP) warm-cache

# Fill Numba's cache with the CPU kernels' common specialisations (float32,
# float64; serial, batch and hidden split) so that no first benchmark or
# forward call compiles; quick (~2 s) when the cache is already filled.
warm-cache: $(STAMP)
	$(PY) -c "import lstm_numba.cpu as c; print('numba cache:', *c.warm_cache())"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[all]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest

compare: setup
	$(PY) -m lstm_numba compare --cell lstm --hidden 256 --batch 16 --seq-len 128

# ---- benchmarks (harness) -------------------------------------------------
# make bench                    fast profile (~20-25 min on 2 cores), asv's own
#                               virtualenv built from the HEAD commit
# make bench PROFILE=full       DeepBench sizes, long sequences (hours)
# make bench ASV_PYTHON=same    measure the working tree installed in $(VENV)
#                               instead (results filed under HEAD's hash)
ASV        := $(VENV)/bin/asv
PROFILE    ?= fast
ASV_PYTHON ?=
ifeq ($(ASV_PYTHON),same)
ASV_RUN_ARGS = --python=same --set-commit-hash $$(git rev-parse HEAD)
else
ASV_RUN_ARGS = HEAD^!
endif

asv-machine: setup
	$(ASV) machine --yes

# CUDA needs the spawn launch method (also set in asv.conf.json).
asv-run: asv-machine
	LSTM_NUMBA_PROFILE=$(PROFILE) $(ASV) run --launch-method spawn --durations 8 $(ASV_RUN_ARGS)

# asv publish, then serve asv's JS/CSS from .asv/html/vendor so the page
# works without network (asv 0.6 loads them from CDNs; tools/asv_offline.py).
publish: setup
	$(ASV) publish
	$(PY) tools/asv_offline.py .asv/html

report: setup
	$(PY) -m lstm_numba report --results-dir .asv/results --out reports

preview: setup
	$(ASV) preview

bench: asv-machine
	@start=$$(date +%s); \
	echo "== asv run, profile $(PROFILE) (one line per benchmark as it finishes) =="; \
	LSTM_NUMBA_PROFILE=$(PROFILE) $(ASV) run --launch-method spawn --durations 8 $(ASV_RUN_ARGS); \
	status=$$?; \
	$(ASV) publish && \
	$(PY) tools/asv_offline.py .asv/html && \
	$(PY) -m lstm_numba report --results-dir .asv/results --out reports || status=1; \
	echo; \
	echo "== done in $$(( $$(date +%s) - start )) s =="; \
	echo "  plots and key numbers: $(CURDIR)/reports/index.html (summary: reports/summary.md)"; \
	echo "  asv's HTML report:     $(CURDIR)/.asv/html/index.html (or: $(ASV) preview)"; \
	if [ $$status -ne 0 ]; then echo "  some benchmarks failed (asv exit $$status): see above and the report"; fi; \
	exit $$status

# Numba's cache notices edits to a kernel's own file only (see README, Tests).
clean-cache:
	find lstm_numba -name '*.nbi' -delete -o -name '*.nbc' -delete

clean: clean-cache
	rm -rf $(VENV) .asv reports/*.png reports/*.svg reports/*.html reports/*.md
