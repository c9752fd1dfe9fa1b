# Every dependency comes from a Debian package (tools/setup.sh installs them). A CUDA libtorch
# works too: point Torch_DIR at its share/cmake/Torch.
find_package(Threads REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(CLI11 REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(PNG REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(GTest REQUIRED)
find_package(Torch REQUIRED)

# Torch's headers are the costliest part of the build: every target that uses tensors shares one
# precompiled header (torch_pch), and only those targets include torch at all.
add_library(torch_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/torch_pch.cpp)
target_link_libraries(torch_pch PUBLIC ${TORCH_LIBRARIES})
target_include_directories(torch_pch PUBLIC ${TORCH_INCLUDE_DIRS})
target_precompile_headers(torch_pch PUBLIC <ATen/ATen.h> <c10/core/InferenceMode.h>)
