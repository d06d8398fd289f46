# The three commands everyone relies on. Everything runs on 127.0.0.1; installs and data go to .local/.
.PHONY: up down test status lock bench fuzz journey faults

up:      ## install what is missing, start everything, print the URLs
	@deploy/local/ecp up

down:    ## stop everything `make up` started, and nothing else
	@deploy/local/ecp down

test:    ## the whole test suite (starts what it needs)
	@deploy/local/ecp test

status:
	@deploy/local/ecp status

bench:   ## event backbone benchmark against the running system
	@.local/venv/bin/python -m bench.event_hop

journey: ## whole-system journey benchmark against the running system (ARGS="--families 40 --concurrency 2,4,8")
	@.local/venv/bin/python -m bench.journey $(ARGS)

faults:  ## the journey benchmark while each service, Kafka, the database and S3 are killed -9 and restarted; checks invariants
	@.local/venv/bin/python -m bench.faults $(ARGS)

fuzz:    ## API fuzzing with a larger budget (100 cases per operation) against the running system
	@ECP_FUZZ_EXAMPLES=$${ECP_FUZZ_EXAMPLES:-100} .local/venv/bin/python -m pytest tests/fuzz -q

lock:    ## re-pin requirements.lock from requirements.txt
	@rm -rf .local/lockvenv && python3 -m venv .local/lockvenv && .local/lockvenv/bin/pip install -q -r requirements.txt \
	  && (echo "# Generated: pip freeze of a venv built from requirements.txt (Python 3.11). Regenerate with 'make lock'."; \
	      .local/lockvenv/bin/pip freeze) > requirements.lock && rm -rf .local/lockvenv
