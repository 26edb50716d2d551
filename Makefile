# The obvious commands. Each does its own set-up on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JDK_PACKAGES := openjdk-17-jre-headless maven

.PHONY: install jdk test-deps dev test faults lint typecheck clean broker broker-stop

install: jdk $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The local Kafka (`hamster broker`, and the test suite's broker) runs on Java 17+; Maven fetches its jars
# once. As root with apt-get (CI) they are installed here; anywhere else a missing one stops with a hint.
jdk:
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(JDK_PACKAGES) for the local Kafka broker"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(JDK_PACKAGES); \
	else \
		echo "error: the local Kafka broker needs java (17+) and mvn; install them, e.g." \
			"sudo apt-get install $(JDK_PACKAGES)" >&2; \
		exit 1; \
	fi

# The contract tests run on a real PostgreSQL, the browser tests on Chromium, the checkout-over-ssh
# test on OpenSSH's sshd and shell stages in bubblewrap (with slirp4netns), all Debian's packages:
# installed here when missing (as root with apt-get; anywhere else a missing one stops with a hint).
test-deps:
	bash scripts/sandbox.sh
	bash scripts/postgres.sh
	bash scripts/chromium.sh
	bash scripts/sshd.sh

dev: install
	$(BIN)/hamster dev

# Lint, format and types first (about 15 s cold): they fail in seconds where the suite takes minutes.
test: install lint typecheck test-deps
	$(BIN)/pytest

# The fault soaks (docs/reliability.md): 1,000 webhooks, two workers, one killed, the broker restarted;
# then 1,000 more on a three-broker cluster, one broker SIGKILLed mid-run.
faults: install
	$(BIN)/python -m faults.soak
	$(BIN)/python -m faults.soak --brokers 3

# The benchmarks (docs/performance.md): Hamster against its limits and against Celery + Redis, same run.
.PHONY: bench
bench: install
	bash bench/setup.sh
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy --strict on the packages, as pyproject.toml's [tool.mypy] says.
typecheck: install
	$(BIN)/mypy

# A local Kafka on HAMSTER_KAFKA_BOOTSTRAP (default 127.0.0.1:9092), data under HAMSTER_HOME (.hamster).
broker: install
	$(BIN)/hamster broker start

broker-stop: install
	$(BIN)/hamster broker stop

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
