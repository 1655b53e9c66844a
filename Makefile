# capstan: `make run` starts it, `make test` checks it. Both install what is missing first.
PYTHON ?= /usr/bin/python3
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all setup build build-asan build-fuzz run test unit fuzz bench clean

all: build

setup:
	@./scripts/setup

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized >/dev/null

build: setup $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false >/dev/null

build-asan: setup $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD) >/dev/null || ninja -C $(ASAN_BUILD)

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null

build-fuzz: setup $(FUZZ_BUILD)/build.ninja
	@ninja -C $(FUZZ_BUILD) >/dev/null || ninja -C $(FUZZ_BUILD)

# Starts the recorder with its embedded defaults: ./data, 127.0.0.1:8080, local disk + SQLite.
run: build
	@./$(BUILD)/capstan serve

test: build build-asan
	@$(PYTHON) scripts/run-tests --build $(BUILD) --asan-build $(ASAN_BUILD)

unit: build build-asan
	@$(PYTHON) scripts/run-tests --build $(BUILD) --asan-build $(ASAN_BUILD) --suites unit,fuzz-replay

fuzz: build-fuzz
	@$(PYTHON) scripts/run-fuzz --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS)

bench: build
	@$(PYTHON) bench/run --build $(BUILD) && $(PYTHON) bench/ingest --build $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
