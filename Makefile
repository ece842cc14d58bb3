# tickpipe: every target builds .venv with the system python3 when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The local broker's jars (Apache Kafka from Maven Central, pinned in infra/kafka/pom.xml).
KAFKA_LIBS  := .kafka/libs
KAFKA_STAMP := .kafka/.resolved

.PHONY: install up down status test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -e '.[test,local,research]'
	touch $(STAMP)

# java and mvn are checked first so that a missing one stops here with what to install.
$(KAFKA_STAMP): infra/kafka/pom.xml
	@command -v java >/dev/null 2>&1 || { echo "make: java not found: the local Apache Kafka broker needs Java 17+ (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	@v=$$(java -XshowSettings:properties -version 2>&1 | sed -n 's/.*java.specification.version = //p'); \
	if [ "$${v%%.*}" -lt 17 ] 2>/dev/null; then echo "make: java $$v found, the local Apache Kafka broker needs Java 17+" >&2; exit 1; fi
	@command -v mvn >/dev/null 2>&1 || { echo "make: mvn not found: Maven resolves the Kafka jars from Maven Central (Debian/Ubuntu: apt-get install maven)" >&2; exit 1; }
	rm -rf $(KAFKA_LIBS)
	mvn -q -B -f infra/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(KAFKA_LIBS)
	touch $@

install: $(STAMP) $(KAFKA_STAMP)

up: install
	$(BIN)/tickpipe up

down: install
	$(BIN)/tickpipe down

status: install
	$(BIN)/tickpipe status

# pytest exit 5 (no tests collected) is a failure, not a pass.
# Two groups of tests side by side (tests/run_groups.py): most integration tests wait on sockets and
# timers, not on a core. A group that collects no test fails the run.
test: install
	@$(BIN)/python tests/run_groups.py $(PYTEST_ARGS)

bench: install
	$(BIN)/tickpipe bench

lint: install
	$(BIN)/python -m pip install --quiet ruff==0.17.6
	$(BIN)/ruff check orderbook producers streams sinks executor schemas infra sim_exchange warehouse backtest tests bench

# Stop a running stack first: removing .tickpipe under a live supervisord would orphan it.
clean:
	@if [ -x $(BIN)/tickpipe ]; then $(BIN)/tickpipe down; fi
	rm -rf $(VENV) .tickpipe .kafka
