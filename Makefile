# The two commands a newcomer runs (each sets itself up):
#   make acceptance   the handoff checklist against the built-in emulator, writing reports/
#   make test         everything: lint, types, unit, property, contract, acceptance (CI runs this)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
REPORTS := reports
# pytest-xdist workers for `make unit`: one per core; `make unit JOBS=0` runs in one process
JOBS   ?= auto

.PHONY: acceptance test lint unit features-http bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy sync steps bench tests conftest.py

# Everything but the Gherkin features, with allure-pytest (allure-pytest-bdd drops non-BDD tests),
# on every core: each worker has its own TMPDIR (conftest.py); the property tests share one.
unit: $(STAMP)
	mkdir -p $(REPORTS)
	$(PY) -m pytest tests --ignore=tests/acceptance -n $(JOBS) --dist loadgroup \
		--alluredir=$(REPORTS)/allure-results --junitxml=$(REPORTS)/junit-tests.xml -q

# The Gherkin features with allure-pytest-bdd, into the same allure-results (one process per
# target: the validation report, the cassette and the leak scan are the session's).
FEATURES = $(PY) -m pytest tests/acceptance -p allure_pytest_bdd -p no:allure_pytest \
	--alluredir=$(REPORTS)/allure-results -q

# The handoff checklist as Gherkin against the in-process emulator; then the HTML report.
acceptance: $(STAMP)
	mkdir -p $(REPORTS)
	rm -rf $(REPORTS)/allure-results
	$(FEATURES) --target emulator --junitxml=$(REPORTS)/junit-acceptance.xml

# the staging code path: emulator on 127.0.0.1, kb-sync as a subprocess (on a scaled clock)
features-http: $(STAMP)
	mkdir -p $(REPORTS)
	$(FEATURES) --target http --junitxml=$(REPORTS)/junit-acceptance-http.xml

# `unit` and `features-http` side by side (the loopback run mostly waits on its subprocesses),
# each one's output in one piece; then the in-process features, last, so that their leak scan
# covers everything under reports/ (the other runs' results, cassette and HTML report too).
test: lint
	rm -rf $(REPORTS)/allure-results
	$(MAKE) --no-print-directory -j2 --output-sync=target unit features-http
	$(FEATURES) --target emulator --junitxml=$(REPORTS)/junit-acceptance.xml
	@echo "Reports: $(abspath $(REPORTS))"

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(REPORTS)/allure-results $(REPORTS)/*.xml $(REPORTS)/*.html
