# The two commands of the README: `make run` and `make test`. Both install what is missing first.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
HOST ?= 127.0.0.1
PORT ?= 8188

.PHONY: setup configure build web test run bench clean

setup:
	@bash tools/setup.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: setup $(BUILD_DIR)/build.ninja

build: configure web
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The web UI: web/dist, rebuilt only when a web source changed (npm ci only when the lock file did).
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/package.json web/vite.config.ts
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run build --silent
	@touch $@
web: setup web/dist/index.html

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# `make run` serves ComfyUI's API over the repo's own base directory (HOST=0.0.0.0 PORT=8188 to change).
run: build
	$(BUILD_DIR)/comfycpp serve --base-directory . --listen $(HOST) --port $(PORT) --front-end-root web/dist \
	  --preview-method auto

# `make bench`: comfy.cpp against PyTorch on the same SD1.5 state dict (bench/run.sh; never part of
# `make test`). ONLY=unet|vae|clip|load|memory|server|overhead (comma-separated) picks figures,
# REPEAT=N runs per stage, INSTALLED=0 skips PyTorch as installed. bench/unet_call.sh profiles.
bench: build
	ONLY="$(ONLY)" REPEAT="$(REPEAT)" INSTALLED="$(INSTALLED)" bench/run.sh

clean:
	rm -rf $(BUILD_DIR)
