add_library(comfy_warnings INTERFACE)
target_compile_options(comfy_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter)
