// Compiles the shared torch precompiled header (see cmake/dependencies.cmake).
#include <ATen/ATen.h>
