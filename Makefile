# The two commands a newcomer needs: `make demo` and `make test`. Both build their own virtualenv.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck docs pytest bench screenshots clean

$(STAMP): pyproject.toml constraints-dev.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints-dev.txt -e '.[dev,postgres,redis,celery]'
	touch $(STAMP)

## Run the example storefront on its embedded SQLite database, with FakeDiscord as its sandbox.
demo: $(STAMP)
	$(BIN)/python -m example_app

## Lint (style, and the import contracts in pyproject.toml), type-check, build the docs, and run the whole
## suite on SQLite and PostgreSQL.
test: lint typecheck docs pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

## The docs site (docs/_build/html/index.html); any Sphinx warning fails it.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

# Where no PostgreSQL or Redis answers, tests/services.py starts throwaway ones; Chromium is installed first.
## The tests are spread over PYTEST_WORKERS processes (pytest-xdist); the `serial` ones share one of them.
## Many tests wait on loopback HTTP and subprocesses, so a third worker still pays on two cores.
PYTEST_WORKERS ?= 3
pytest: $(STAMP)
	bash scripts/ensure_chromium.sh
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

## Benchmarks print ratios measured side by side; they are not part of `make test`. Every one runs even
## when an earlier one misses its target (each says PASS or FAIL); `make bench` fails if any did.
## A full run takes the better part of an hour (worker_memory.py drains 100,000 deliveries).
BENCHMARKS := client_drain checkout_overhead worker_drain worker_memory webhook_throughput scale_queries \
	expiry_sweep reconcile_guild
bench: $(STAMP)
	@failed=""; for name in $(BENCHMARKS); do \
		echo "== benchmarks/$$name.py"; \
		$(BIN)/python benchmarks/$$name.py || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "missed their targets:$$failed"; exit 1; fi

## Refresh the README's and the docs' screenshots from the browser tests' own (saved under test-output/).
## The command answers use emoji: install Debian's fonts-noto-color-emoji first, or Chromium draws boxes.
SHOTS := test-output/browser
screenshots: $(STAMP)
	$(BIN)/pytest tests/example/browser -k sqlite -q
	mkdir -p docs/screenshots
	cp $(SHOTS)/test_customer_links_discord_at_checkout_and_the_role_appears_in_the_server_sqlite_/01-checkout-with-the-discord-prompt.png docs/screenshots/checkout.png
	cp $(SHOTS)/test_customer_links_discord_at_checkout_and_the_role_appears_in_the_server_sqlite_/06-sandbox-guild-with-the-role.png docs/screenshots/sandbox-guild.png
	cp $(SHOTS)/test_owner_fixes_the_role_hierarchy_in_the_server_and_retries_the_failed_delivery_sqlite_/03-dashboard-deliveries-with-the-failure.png docs/screenshots/dashboard-deliveries.png
	cp $(SHOTS)/test_owner_fixes_the_role_hierarchy_in_the_server_and_retries_the_failed_delivery_sqlite_/07-dashboard-overview.png docs/screenshots/dashboard-overview.png
	cp $(SHOTS)/test_a_member_asks_for_help_claims_with_the_code_and_checks_the_delivery_sqlite_/01-help-answer.png docs/screenshots/help-answer.png
	cp $(SHOTS)/test_a_member_asks_for_help_claims_with_the_code_and_checks_the_delivery_sqlite_/02-claim-answer.png docs/screenshots/claim-answer.png
	cp $(SHOTS)/test_a_member_asks_for_help_claims_with_the_code_and_checks_the_delivery_sqlite_/03-claim-answer-with-a-failure.png docs/screenshots/claim-answer-failed.png
	cp $(SHOTS)/test_a_member_asks_for_help_claims_with_the_code_and_checks_the_delivery_sqlite_/04-check-answer.png docs/screenshots/check-answer.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache instance test-output docs/_build
