# Makefile — builds backpropd, its tests and benchmarks.
#   make              build/backpropd (+ libraries)
#   make run          install deps, build, start on 127.0.0.1:8080 with data in ./data
#                     (make run PORT=8081: another port)
#   make test         install deps, build, run every test; again with ASan+UBSan; job tests
#                     against a ThreadSanitizer server. Ends with "tests: N passed, M failed".
#   make bench        benchmarks (ratios measured in one run)
#   make test-docker  build the container image and test it end to end
# VARIANT=asan|tsan builds into build/asan or build/tsan with the sanitizers on.

VARIANT ?=
PORT = 8080
BUILD := build$(if $(VARIANT),/$(VARIANT))

# Package flags are asked of pkg-config when a recipe runs, never when make parses this file:
# on a fresh machine `make run` parses before `deps` has installed anything. `=` (not `:=`)
# defers the $(shell); the entry targets (run, test, bench) also install first and then build
# in a sub-make.
PKGS := libmicrohttpd jansson sqlite3 libpq libcurl criterion openblas zlib
pkgconf = $(shell pkg-config $(1) 2>/dev/null)
PKG_CFLAGS = $(call pkgconf,--cflags $(PKGS))
LIB_BLAS = $(call pkgconf,--libs openblas) -lm -lpthread
LIB_API = $(call pkgconf,--libs jansson)
LIB_SERVER = $(call pkgconf,--libs libmicrohttpd sqlite3 libpq nettle zlib) -lpthread
LIB_TEST = $(call pkgconf,--libs criterion libcurl zlib)

CC ?= cc
WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wcast-qual -Wundef -Wvla -Wnull-dereference -Werror
CFLAGS = -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -MMD -MP -I. $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS = $(EXTRA_LDFLAGS)
ifeq ($(VARIANT),asan)
  CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(VARIANT),tsan)
  # target_clones resolvers run before TSan initialises: build the core single-version.
  CFLAGS += -fsanitize=thread -fno-omit-frame-pointer -DBP_NO_MULTIVERSION
  LDFLAGS += -fsanitize=thread
endif

CORE_SRC := $(wildcard core/*.c)
API_SRC := $(wildcard api/*.c)
# server/: process set-up at the top, then one folder a room (common, http, security,
# handlers, jobs, store); each store engine is built from its own folder server/store/<engine>/.
STORE_ENGINES := sqlite postgres
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c server/common/*.c server/http/*.c \
                server/security/*.c server/handlers/*.c server/jobs/*.c server/store/*.c)) \
              $(foreach e,$(STORE_ENGINES),$(wildcard server/store/$(e)/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
API_OBJ := $(API_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)

# Tests: tests/<area>_*.c, one Criterion binary each, linked with what the area needs.
#   core_*  → core      api_*  → api + core      store_*, server_*  → server + api + core
#   http_*  → the harness (they talk to the real binary over HTTP) + api + core
TEST_SRC := $(wildcard tests/core_*.c tests/api_*.c tests/store_*.c tests/server_*.c tests/http_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HARNESS_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/harness/*.c))
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(filter-out bench/bench_util.c,$(wildcard bench/*.c)))

.PHONY: all deps run test tests bench benches clean test-docker fuzz soak
all: $(BUILD)/backpropd

deps:
	@scripts/install-deps

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcore.a: $(CORE_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libapi.a: $(API_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libserver.a: $(SERVER_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/backpropd: $(BUILD)/server/main.o $(BUILD)/libserver.a $(BUILD)/libapi.a $(BUILD)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_SERVER) $(LIB_API) $(LIB_BLAS)

$(BUILD)/tests/core_%: $(BUILD)/tests/core_%.o $(BUILD)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_TEST) $(LIB_BLAS)
$(BUILD)/tests/api_%: $(BUILD)/tests/api_%.o $(BUILD)/libapi.a $(BUILD)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_TEST) $(LIB_API) $(LIB_BLAS)
$(BUILD)/tests/store_%: $(BUILD)/tests/store_%.o $(HARNESS_OBJ) $(BUILD)/libserver.a $(BUILD)/libapi.a $(BUILD)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_TEST) $(LIB_SERVER) $(LIB_API) $(LIB_BLAS)
$(BUILD)/tests/server_%: $(BUILD)/tests/server_%.o $(HARNESS_OBJ) $(BUILD)/libserver.a $(BUILD)/libapi.a $(BUILD)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_TEST) $(LIB_SERVER) $(LIB_API) $(LIB_BLAS)
$(BUILD)/tests/http_%: $(BUILD)/tests/http_%.o $(HARNESS_OBJ) $(BUILD)/libapi.a $(BUILD)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_TEST) $(LIB_API) $(LIB_BLAS)

tests: all $(TEST_BIN)

# The OpenAPI document is compiled into the binary (served at /openapi.yaml).
$(BUILD)/server/handlers/openapi_blob.o: api/openapi.yaml
# So are the files of GET /docs.
$(BUILD)/server/handlers/docs_blob.o: $(wildcard server/handlers/docs/*)
# So are the dashboard's files (served at / and /ui/{asset}).
$(BUILD)/server/handlers/dashboard_blob.o: $(wildcard server/dashboard/*)

# The whole suite: plain, then ASan+UBSan, then the job tests against a TSan server.
test: deps
	@scripts/install-js
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory VARIANT=asan tests
	@$(MAKE) --no-print-directory VARIANT=tsan build/tsan/backpropd
	@tests/run

# Benchmarks drive the server with the harness's process and HTTP client (no Criterion there).
BENCH_HARNESS_OBJ := $(patsubst %.c,$(BUILD)/%.o,tests/harness/process.c tests/harness/client.c tests/harness/files.c \
                     tests/harness/pg.c tests/harness/sse.c)
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/bench/bench_util.o $(BENCH_HARNESS_OBJ) $(BUILD)/libserver.a $(BUILD)/libapi.a $(BUILD)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_TEST) $(LIB_SERVER) $(LIB_API) $(LIB_BLAS)

benches: all $(BENCH_BIN)
bench: deps
	@$(MAKE) --no-print-directory benches
	@bench/run

# The hostile-load proof (tests/soak): kill -9 rounds, SSE churn, slowloris, slow bodies,
# against the plain, ASan and TSan servers; prints its figures. Not part of `make test`.
soak: deps
	@$(MAKE) --no-print-directory benches
	@$(MAKE) --no-print-directory build/tests/store_scaleout
	@$(MAKE) --no-print-directory VARIANT=asan build/asan/backpropd
	@$(MAKE) --no-print-directory VARIANT=tsan build/tsan/backpropd
	@tests/soak

# libFuzzer targets (tests/fuzz: the contract, the dataset parsers against each other, the
# checkpoint loader, the ONNX/tfjs writers), each run FUZZ_SECONDS (600) with clang; see
# tests/fuzz/README.
fuzz: deps
	@scripts/install-deps --fuzz
	@tests/fuzz/run

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p data
	$(BUILD)/backpropd --bind 127.0.0.1 --port $(PORT) --data ./data

test-docker:
	@docker/test-docker

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
