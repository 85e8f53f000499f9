VENV := .venv
# Extra pytest arguments, e.g. make test ARGS="-k snmp -x"
ARGS ?=
# Extra pip-compile arguments for `make lock`, e.g. LOCK_ARGS="--upgrade-package fastapi" or LOCK_ARGS=--upgrade
LOCK_ARGS ?=

# The locks pin every package, with hashes, to the versions the tests passed with: requirements.lock for the
# application, requirements-dev.lock for it plus the test tools. Both are compiled from pyproject.toml by `make lock`;
# the runtime lock is constrained by the dev lock, so the two never disagree on a version.
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: run test demo-poll lock

run: $(VENV)/.installed
	$(VENV)/bin/tslcd db upgrade
	$(VENV)/bin/tslcd demo load --if-empty
	$(VENV)/bin/tslcd user ensure-admin
	$(VENV)/bin/tslcd serve --host 127.0.0.1 --port 8000

# After `make run` (in another terminal): poll a local SNMP agent so the demo shows real utilization.
demo-poll: $(VENV)/.installed
	scripts/demo-poll.sh

test: $(VENV)/.installed-dev
	scripts/test.sh $(ARGS)

# Recompile both locks after changing the dependencies in pyproject.toml; existing pins are kept unless upgraded.
lock: | $(VENV)/bin/python
	[ -x $(VENV)/bin/pip-compile ] || $(VENV)/bin/pip install -q -r requirements-dev.lock
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile $(LOCK_FLAGS) $(LOCK_ARGS) --extra dev \
		-o requirements-dev.lock pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile $(LOCK_FLAGS) $(LOCK_ARGS) \
		-c requirements-dev.lock -o requirements.lock pyproject.toml

$(VENV)/bin/python:
	python3 -m venv $(VENV)

# The packages from the lock (hash-checked), then the project itself without resolving anything again; pip check
# catches a dependency added to pyproject.toml without `make lock`.
define install_from
	$(VENV)/bin/pip install -q -r $(1)
	$(VENV)/bin/pip install -q --no-deps -e .
	$(VENV)/bin/pip check >/dev/null || { $(VENV)/bin/pip check; \
		echo "make: the environment does not satisfy pyproject.toml; run make lock" >&2; exit 1; }
endef

$(VENV)/.installed: requirements.lock pyproject.toml | $(VENV)/bin/python
	$(call install_from,requirements.lock)
	touch $@

# The dev install includes the runtime install, so it stamps both.
$(VENV)/.installed-dev: requirements-dev.lock pyproject.toml | $(VENV)/bin/python
	$(call install_from,requirements-dev.lock)
	touch $(VENV)/.installed $@
