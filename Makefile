# The two commands a newcomer runs (each sets itself up):
#   make acceptance   the handoff checklist against the built-in emulator, writing reports/
#   make test         everything: lint, types, unit, property, contract, acceptance (CI runs this)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
REPORTS := reports

.PHONY: acceptance test lint unit bench clean setup

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

# Everything but the Gherkin features, with allure-pytest (allure-pytest-bdd drops non-BDD tests).
unit: $(STAMP)
	mkdir -p $(REPORTS)
	$(PY) -m pytest tests --ignore=tests/acceptance \
		--alluredir=$(REPORTS)/allure-results --junitxml=$(REPORTS)/junit-tests.xml -q

# The handoff checklist as Gherkin against the in-process emulator; then the HTML report.
acceptance: $(STAMP)
	mkdir -p $(REPORTS)
	rm -rf $(REPORTS)/allure-results
	$(PY) -m pytest tests/acceptance -p allure_pytest_bdd -p no:allure_pytest --target emulator \
		--alluredir=$(REPORTS)/allure-results --junitxml=$(REPORTS)/junit-acceptance.xml -q
	@echo "HTML validation report: $(abspath $(REPORTS))/validation-report.html"

test: lint
	rm -rf $(REPORTS)/allure-results
	$(MAKE) --no-print-directory unit
	$(PY) -m pytest tests/acceptance -p allure_pytest_bdd -p no:allure_pytest --target emulator \
		--alluredir=$(REPORTS)/allure-results --junitxml=$(REPORTS)/junit-acceptance.xml -q
	# the staging code path: emulator on 127.0.0.1, kb-sync as a subprocess
	$(PY) -m pytest tests/acceptance -p allure_pytest_bdd -p no:allure_pytest --target http \
		--alluredir=$(REPORTS)/allure-results --junitxml=$(REPORTS)/junit-acceptance-http.xml -q
	@echo "Reports: $(abspath $(REPORTS))"

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(REPORTS)/allure-results $(REPORTS)/*.xml $(REPORTS)/*.html
