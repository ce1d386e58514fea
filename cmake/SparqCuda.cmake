# Decides whether gpu/ (the CUDA backend, libsparq_cuda.so) is built: SPARQ_WITH_CUDA=AUTO builds it
# when a CUDA compiler and toolkit are found, ON requires them, OFF skips it. Sets
# SPARQ_CUDA_ENABLED and, when cuSPARSELt is found, SPARQ_CUSPARSELT_FOUND with the imported target
# sparq_cusparselt.
set(SPARQ_CUDA_ENABLED OFF)
set(SPARQ_CUSPARSELT_FOUND OFF)
string(TOUPPER "${SPARQ_WITH_CUDA}" _sparq_cuda_mode)
if(NOT _sparq_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "SPARQ_WITH_CUDA='${SPARQ_WITH_CUDA}': expected AUTO, ON or OFF")
endif()
if(_sparq_cuda_mode STREQUAL "OFF")
  message(STATUS "sparq: CUDA backend not built (SPARQ_WITH_CUDA=OFF)")
  return()
endif()

# nvcc is often installed at /usr/local/cuda without being on PATH.
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(_sparq_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "SPARQ_WITH_CUDA=ON but no CUDA compiler was found: install the CUDA "
                        "toolkit (nvcc), put nvcc on PATH or set CUDACXX / CMAKE_CUDA_COMPILER; "
                        "or configure with -DSPARQ_WITH_CUDA=AUTO or OFF")
  endif()
  message(STATUS "sparq: CUDA backend not built (no CUDA compiler found; SPARQ_WITH_CUDA=AUTO)")
  return()
endif()

# sm_80 (A100) and sm_90 (H100 / H200): the architectures with sparse tensor cores sparq targets.
if(NOT CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90)
endif()
enable_language(CUDA)
# CMake < 3.26 does not know nvcc's C++20 flag (nvcc >= 12 has it); sparq's headers need C++20.
if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
find_package(CUDAToolkit)
if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cublasLt OR NOT TARGET CUDA::cusparse)
  if(_sparq_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "SPARQ_WITH_CUDA=ON but the CUDA toolkit's cuBLASLt / cuSPARSE were not "
                        "found next to ${CMAKE_CUDA_COMPILER}")
  endif()
  message(STATUS "sparq: CUDA backend not built (CUDA toolkit libraries not found)")
  return()
endif()
set(SPARQ_CUDA_ENABLED ON)
message(STATUS "sparq: CUDA backend built for sm ${CMAKE_CUDA_ARCHITECTURES} "
               "(CUDA ${CUDAToolkit_VERSION})")

# cuSPARSELt (2:4 on sparse tensor cores): SPARQ_CUSPARSELT_ROOT (cache or environment) points at a
# folder with include/cusparseLt.h and lib/libcusparseLt.so*, e.g. the PyPI wheel
# nvidia-cusparselt-cu13's site-packages/nvidia/cu13; scripts/cuda-deps.sh installs that wheel
# into $SPARQ_CUDA_VENV or ~/.cache/sparq/cuda-venv, which are searched too, as are the
# site-packages of the python3 on PATH and a system install.
set(_sparq_lt_hints)
if(SPARQ_CUSPARSELT_ROOT)
  list(APPEND _sparq_lt_hints "${SPARQ_CUSPARSELT_ROOT}")
endif()
if(DEFINED ENV{SPARQ_CUSPARSELT_ROOT})
  list(APPEND _sparq_lt_hints "$ENV{SPARQ_CUSPARSELT_ROOT}")
endif()
# The same venv locations scripts/cuda-deps.sh installs into.
set(_sparq_lt_venvs)
if(DEFINED ENV{SPARQ_CUDA_VENV})
  list(APPEND _sparq_lt_venvs "$ENV{SPARQ_CUDA_VENV}")
endif()
if(DEFINED ENV{XDG_CACHE_HOME})
  list(APPEND _sparq_lt_venvs "$ENV{XDG_CACHE_HOME}/sparq/cuda-venv")
endif()
if(DEFINED ENV{HOME})
  list(APPEND _sparq_lt_venvs "$ENV{HOME}/.cache/sparq/cuda-venv")
endif()
foreach(_venv ${_sparq_lt_venvs})
  file(GLOB _sparq_lt_wheels "${_venv}/lib/python3*/site-packages/nvidia/cu13")
  list(APPEND _sparq_lt_hints ${_sparq_lt_wheels})
endforeach()
# The wheel may also be installed in the python3 on PATH (GPU images with PyTorch carry it).
find_program(_sparq_python3 python3)
if(_sparq_python3)
  execute_process(
    COMMAND ${_sparq_python3} -c
            "import site; print(';'.join(site.getsitepackages() + [site.getusersitepackages()]))"
    OUTPUT_VARIABLE _sparq_site_dirs OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  foreach(_site ${_sparq_site_dirs})
    file(GLOB _sparq_lt_wheels "${_site}/nvidia/cu13" "${_site}/nvidia/cusparselt")
    list(APPEND _sparq_lt_hints ${_sparq_lt_wheels})
  endforeach()
endif()
find_path(SPARQ_CUSPARSELT_INCLUDE_DIR cusparseLt.h
  HINTS ${_sparq_lt_hints} PATH_SUFFIXES include include/libcusparseLt/13)
find_library(SPARQ_CUSPARSELT_LIBRARY NAMES cusparseLt libcusparseLt.so.0
  HINTS ${_sparq_lt_hints} PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu/libcusparseLt/13)
if(SPARQ_CUSPARSELT_INCLUDE_DIR AND SPARQ_CUSPARSELT_LIBRARY)
  set(SPARQ_CUSPARSELT_FOUND ON)
  add_library(sparq_cusparselt SHARED IMPORTED)
  set_target_properties(sparq_cusparselt PROPERTIES
    IMPORTED_LOCATION "${SPARQ_CUSPARSELT_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SPARQ_CUSPARSELT_INCLUDE_DIR}")
  message(STATUS "sparq: cuSPARSELt found: ${SPARQ_CUSPARSELT_LIBRARY}")
else()
  message(STATUS "sparq: cuSPARSELt not found: the 2:4 GPU path (sparse tensor cores) is compiled "
                 "out and 2:4 layers on CUDA run dense on cuBLASLt. Run scripts/cuda-deps.sh or "
                 "set SPARQ_CUSPARSELT_ROOT to a folder with include/cusparseLt.h and lib/")
endif()
