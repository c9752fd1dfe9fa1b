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

# Until the server lands, `make run` runs the sample workflow over the repo's own base directory.
run: build
	$(BUILD_DIR)/comfycpp run workflows/sample_image.json --base-directory .

clean:
	rm -rf $(BUILD_DIR)
