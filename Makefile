# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# The venv lives in .venv; constraints.txt pins the checked stack (torch 2.14.1 from this machine's disk).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= test
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
export HF_HUB_OFFLINE ?= 1

.PHONY: install demo test test-fast bench extras clean-venv

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $@

install: $(STAMP)

## The main job: the miniature world's Table 1 (trains nothing it ships; no download).
demo: install
	$(VENV)/bin/ganrm-bench run

## The tests, offline, one torch thread (what CI runs).
test: install
	OMP_NUM_THREADS=1 $(VENV)/bin/pytest -q

## Benchmarks (speed and memory goals live here, not in tests).
bench: install
	OMP_NUM_THREADS=2 $(VENV)/bin/pytest -q benchmarks/perf --benchmark-enable --benchmark-only -p no:timeout

## Optional heavy reward-model packages (image-reward, hpsv2 need --no-deps; see docs/install.md).
extras: install
	$(PY) -m pip install -q -c constraints.txt -e '.[reward-models,safety,video]'
	$(PY) -m pip install -q --no-deps -c constraints.txt image-reward==1.5 hpsv2==1.2.0

clean-venv:
	rm -rf $(VENV)
