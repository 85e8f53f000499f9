VENV := .venv
# Extra pytest arguments, e.g. make test ARGS="-k snmp -x"
ARGS ?=

.PHONY: run test demo-poll

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

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e .
	touch $@

# The dev install includes the runtime install, so it stamps both.
$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@
