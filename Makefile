.PHONY: install demo test

# Create the virtualenv on first use and install truthset with its test tools.
install:
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install -q -e '.[test]'

demo: install
	.venv/bin/truthset demo

# Lint, then the whole suite on 2 workers. PostgreSQL tests run when TRUTHSET_TEST_POSTGRES_URL is
# set (`eval "$$(scripts/start-postgres.sh)"` starts a throwaway cluster; .ci/run does it for CI).
# The browser tests keep a screenshot of each page they visit in build/screenshots (gitignored).
test: install
	.venv/bin/ruff check src tests benchmarks
	mkdir -p build/screenshots
	TRUTHSET_E2E_SCREENSHOTS="$${TRUTHSET_E2E_SCREENSHOTS:-$(CURDIR)/build/screenshots}" .venv/bin/python -m pytest -n 2 -q
