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
find_package(CURL REQUIRED)  # model downloads (libcurl4-openssl-dev)
find_package(GTest REQUIRED)
find_package(Torch REQUIRED)

# Torch's headers are the costliest part of the build: the precompiled header is built once, in
# torch_pch, and every target that compiles tensor code reuses it (comfy_use_torch_pch) instead
# of building its own 300 MB copy. Linking torch_pch gives torch's include paths and libraries.
add_library(torch_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/torch_pch.cpp)
target_link_libraries(torch_pch PUBLIC ${TORCH_LIBRARIES})
target_include_directories(torch_pch PUBLIC ${TORCH_INCLUDE_DIRS})
target_precompile_headers(torch_pch PRIVATE <ATen/ATen.h> <c10/core/InferenceMode.h>)

function(comfy_use_torch_pch target)
  target_link_libraries(${target} PUBLIC torch_pch)
  target_precompile_headers(${target} REUSE_FROM torch_pch)
endfunction()
