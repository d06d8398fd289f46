"""The event contracts other city systems code against: ``schemas.contracts`` holds the code
models; ``events/``, ``examples/`` and ``asyncapi.yaml`` are generated from them."""
