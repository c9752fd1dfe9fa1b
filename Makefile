# The two commands of the README: `make run` and `make test`. Both install what is missing first.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
HOST ?= 127.0.0.1
PORT ?= 8188

.PHONY: setup configure build test run bench clean

setup:
	@bash tools/setup.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: setup $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# `make run` serves ComfyUI's API over the repo's own base directory (HOST=0.0.0.0 PORT=8188 to change).
run: build
	$(BUILD_DIR)/comfycpp serve --base-directory . --listen $(HOST) --port $(PORT)

# `make bench`: the benchmarks under bench/ (never part of `make test`).
bench: build
	bench/sd15_txt2img.sh

clean:
	rm -rf $(BUILD_DIR)
