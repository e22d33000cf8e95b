# Every target sets up .venv on first use (Python 3.11+ needed as $(PYTHON)).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench install clean deploy-templates catalogue catalogue-pot

demo: $(STAMP)  ## run the bot on its embedded defaults (SQLite, simulator, console chat)
	$(BIN)/islandbot demo

test: $(STAMP)  ## the whole test suite (MariaDB: ISLANDBOT_TEST_MYSQL_URL's server, else a throwaway one)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff (lint + format check), mypy --strict, and the layers' import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## benchmarks; each prints one JSON object as its last line
	$(BIN)/python -m bench.allocation
	$(BIN)/python -m bench.kubesim_scale
	$(BIN)/python -m bench.watcher
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.board
	$(BIN)/python -m bench.pool
	$(BIN)/python -m bench.slack_ack
	$(BIN)/python -m bench.e2e

LOCALE := bot/words/locale
catalogue-pot: $(STAMP)  ## extract every message id from the code into $(LOCALE)/islandbot.pot
	$(BIN)/pybabel -q extract -F babel.cfg --no-default-keywords -k _ -k n_:1,2 -k p_:1c,2 -k N_ \
		--sort-by-file --project islandbot --copyright-holder "islandbot's authors" \
		-o $(LOCALE)/islandbot.pot .

catalogue: catalogue-pot  ## and add the new ids to every language's .po (then translate them there)
	$(BIN)/pybabel -q update -i $(LOCALE)/islandbot.pot -d $(LOCALE) -D islandbot --no-fuzzy-matching -w 100

deploy-templates: $(STAMP)  ## regenerate deploy/k8s/island-templates.yaml from k8s_templates/
	$(BIN)/python deploy/k8s/templates_configmap.py

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
