# prunekit: `make reproduce` runs every notebook headless; `make test` runs the whole suite.
# Both create or update .venv from requirements.lock first; a second run reinstalls nothing when nothing changed.

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
PROFILE  ?= quick
KERNEL   := prunekit
STAMP    := $(VENV)/.prunekit-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
EXECUTED := data/executed/$(PROFILE)
PYTEST_ARGS ?=
LAB_IP   ?= 127.0.0.1
LAB_PORT ?= 8888
LAB_ARGS ?=
KERNEL_JSON := $(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json
# OpenMP threads that do not spin away a busy machine (prunekit.core.runtime, chosen by benchmarks/bench_load.py): in the
# environment of every process a target starts, before torch loads; a value already set is kept
GOMP_SPINCOUNT ?= 30000
export GOMP_SPINCOUNT

.PHONY: help install reproduce claims report readme test test-gpu unit nbval bench lab clean

help:
	@echo "make reproduce [PROFILE=quick|paper]  install, execute every notebook into $(EXECUTED)/, gather the claims"
	@echo "make claims [PROFILE=...]           every notebook's claims table in data/results/PROFILE/claims.csv"
	@echo "make report [PROFILE=...]           a static site in data/report/PROFILE/ (runs only notebooks not yet run)"
	@echo "make readme                          the README's claims table and figures from the paper profile's claims"
	@echo "make test                            install, then unit tests and nbval over every notebook"
	@echo "make test-gpu                        on a GPU machine: the CUDA tests, every notebook's quick profile on CUDA"
	@echo "make bench                           benchmarks (rows into data/results/benchmarks.csv)"
	@echo "make lab [LAB_IP=127.0.0.1 LAB_PORT=8888]  JupyterLab on notebooks/ (as root too)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# the notebooks' kernel, with prunekit's OpenMP setting in its environment
$(KERNEL_JSON): $(STAMP) Makefile
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (prunekit)" \
	  --env GOMP_SPINCOUNT $(GOMP_SPINCOUNT) >/dev/null

install: $(STAMP) $(KERNEL_JSON)

reproduce: install
	@mkdir -p $(EXECUTED)
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb (profile=$(PROFILE))"; \
	  PRUNEKIT_QUIET=1 $(BIN)/papermill "$$nb" "$(EXECUTED)/$$(basename $$nb)" -k $(KERNEL) \
	    -p profile $(PROFILE) --log-level WARNING || exit 1; \
	done
	@$(BIN)/python -m prunekit claims --profile $(PROFILE)
	@echo "Executed notebooks: $(EXECUTED)/  figures: figures/  tables: data/results/$(PROFILE)/"

claims: install
	@$(BIN)/python -m prunekit claims --profile $(PROFILE)

# make report: executes only the notebooks that have no executed copy newer than themselves (written under a
# temporary name, so an interrupted run leaves nothing that looks done), then gathers the claims and builds the site
$(EXECUTED)/%.ipynb: notebooks/%.ipynb | install
	@mkdir -p $(EXECUTED)
	PRUNEKIT_QUIET=1 $(BIN)/papermill "$<" "$@.part.ipynb" -k $(KERNEL) -p profile $(PROFILE) --log-level WARNING
	@mv "$@.part.ipynb" "$@"

report: install $(addprefix $(EXECUTED)/,$(notdir $(NOTEBOOKS)))
	@$(BIN)/python -m prunekit claims --profile $(PROFILE)
	@$(BIN)/python -m prunekit report --profile $(PROFILE)

readme: install
	@$(BIN)/python -m prunekit readme

test: install
	PRUNEKIT_QUIET=1 PRUNEKIT_FIGURES=$(CURDIR)/data/test-figures $(BIN)/python -m pytest tests notebooks \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider $(PYTEST_ARGS)

# make test-gpu: on a machine with a GPU, the CUDA tests and every notebook's quick profile on CUDA (about 6 of its 10
# minutes on one GPU). It runs with .venv's Python when there is one, else python3 (a GPU machine with torch but no
# venv); each notebook through papermill where it and the kernel are installed, else headless (python -m prunekit
# run-notebook). Without a CUDA device it says so and runs nothing.
GPU_PY   ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
CUDA_TESTS = $(shell grep -rl "mark.cuda" tests --include="test_*.py")
GPU_EXECUTED := data/executed/gpu

test-gpu:
	@if ! $(GPU_PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then \
	  echo "make test-gpu: torch sees no CUDA device here; nothing run (the CUDA tests skip on the CPU)"; exit 0; fi; \
	PRUNEKIT_QUIET=1 $(GPU_PY) -m pytest $(CUDA_TESTS) -m cuda -rs -p no:cacheprovider $(PYTEST_ARGS) || exit 1; \
	mkdir -p $(GPU_EXECUTED); \
	for nb in $(NOTEBOOKS); do \
	  echo "== $$nb (profile=quick, device=cuda)"; \
	  if $(GPU_PY) -c "import papermill" 2>/dev/null && [ -f $(KERNEL_JSON) ]; then \
	    PRUNEKIT_QUIET=1 timeout 300 $(GPU_PY) -m papermill "$$nb" "$(GPU_EXECUTED)/$$(basename $$nb)" -k $(KERNEL) \
	      -p profile quick -p device cuda --log-level WARNING || exit 1; \
	  else \
	    PRUNEKIT_QUIET=1 MPLBACKEND=Agg timeout 300 $(GPU_PY) -m prunekit run-notebook "$$nb" -p profile quick \
	      -p device cuda || exit 1; \
	  fi; \
	done

unit: install
	PRUNEKIT_QUIET=1 $(BIN)/python -m pytest tests $(PYTEST_ARGS)

nbval: install
	PRUNEKIT_QUIET=1 PRUNEKIT_FIGURES=$(CURDIR)/data/test-figures $(BIN)/python -m pytest notebooks \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=600 $(PYTEST_ARGS)

bench: install
	@for b in $(sort $(wildcard benchmarks/bench_*.py)); do \
	  echo "== $$b"; PRUNEKIT_QUIET=1 $(BIN)/python $$b $(BENCH_ARGS) || exit 1; \
	done

lab: install
	@echo "JupyterLab: open the http://$(LAB_IP):$(LAB_PORT)/lab?token=... address printed below (kernel: Python (prunekit))"
	$(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks --ip=$(LAB_IP) \
	  --port=$(LAB_PORT) $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

clean:
	rm -rf data/executed data/results data/test-figures
