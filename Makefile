# The two commands in the README: `make run` and `make test`. Both install what is missing into .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/rehab up

# The suite in TEST_WORKERS processes (pytest-xdist), a test file to each in turn: most of its time is spent waiting
# on the processes, servers and browsers a test starts, so on 2 cores 3 workers take about half the time of one.
# Each test has its own servers, ports and files; `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 3

test: $(STAMP)
	@tests/install-debian-tools.sh
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) var
