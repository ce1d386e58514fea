# Run by CTest (install_and_build_consumer) with cmake -P:
#   -DBUILD_DIR=<sparq build tree> -DSOURCE_DIR=<sparq source tree> -DWORK_DIR=<scratch dir>
# Installs the build tree into WORK_DIR/prefix, runs an installed tool from the prefix (its RPATH
# must find the installed libsparq), configures and builds examples/consumer against that prefix
# alone, and runs it against the installed libsparq. Any failure is fatal.
cmake_minimum_required(VERSION 3.20)

foreach(var BUILD_DIR SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_consumer.cmake: pass -D${var}=...")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Runs a command; on failure stops with its output.
function(run_step what)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR
      "${what} failed (${rc}):\n  ${command}\n--- stdout\n${out}\n--- stderr\n${err}")
  endif()
  message(STATUS "${what}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# Build the consumer with the compiler and generator of the sparq build.
load_cache("${BUILD_DIR}" READ_WITH_PREFIX sparq_ CMAKE_CXX_COMPILER CMAKE_GENERATOR
           CMAKE_BUILD_TYPE CMAKE_INSTALL_BINDIR SPARQ_BUILD_BENCH)
set(configure_args)
if(sparq_CMAKE_GENERATOR)
  list(APPEND configure_args -G "${sparq_CMAKE_GENERATOR}")
endif()
if(sparq_CMAKE_CXX_COMPILER)
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${sparq_CMAKE_CXX_COMPILER}")
endif()
if(NOT sparq_CMAKE_BUILD_TYPE)
  set(sparq_CMAKE_BUILD_TYPE Release)
endif()

run_step("install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}"
         --config "${sparq_CMAKE_BUILD_TYPE}")

# What a consumer needs must be there: the public headers, the package files, the library.
file(GLOB_RECURSE config_files "${prefix}/*/sparqConfig.cmake")
file(GLOB_RECURSE libraries "${prefix}/*/libsparq.so*")
foreach(required "${prefix}/include/sparq/sparq.hpp" "${prefix}/include/sparq/linear.hpp")
  if(NOT EXISTS "${required}")
    message(FATAL_ERROR "install: ${required} is missing")
  endif()
endforeach()
if(NOT config_files OR NOT libraries)
  message(FATAL_ERROR "install: sparqConfig.cmake or libsparq.so missing under ${prefix}")
endif()
list(GET libraries 0 library)
get_filename_component(libdir "${library}" DIRECTORY)

# The installed tools run from the prefix as installed: no LD_LIBRARY_PATH, and the loader takes
# libsparq from the prefix (not from the build tree or an earlier install elsewhere).
if(NOT DEFINED sparq_SPARQ_BUILD_BENCH OR sparq_SPARQ_BUILD_BENCH)
  set(bindir "${sparq_CMAKE_INSTALL_BINDIR}")
  if(bindir STREQUAL "")
    set(bindir bin)
  endif()
  if(NOT IS_ABSOLUTE "${bindir}")
    set(bindir "${prefix}/${bindir}")
  endif()
  foreach(tool sparq-bench sparq-eval sparq-prune sparq-generate)
    if(NOT EXISTS "${bindir}/${tool}")
      message(FATAL_ERROR "install: ${bindir}/${tool} is missing")
    endif()
  endforeach()
  run_step("run installed sparq-eval --help"
           "${CMAKE_COMMAND}" -E env --unset=LD_LIBRARY_PATH "${bindir}/sparq-eval" --help)
  if(NOT step_output MATCHES "Usage: ")
    message(FATAL_ERROR "installed sparq-eval --help printed no usage:\n${step_output}")
  endif()
  # glibc's loader lists what it would load (what ldd prints) instead of running the program.
  execute_process(COMMAND "${CMAKE_COMMAND}" -E env --unset=LD_LIBRARY_PATH
                          LD_TRACE_LOADED_OBJECTS=1 "${bindir}/sparq-eval"
                  OUTPUT_VARIABLE loaded ERROR_VARIABLE loaded)
  string(REGEX MATCH "libsparq\\.so[^\n]*" loaded_sparq "${loaded}")
  get_filename_component(real_prefix "${prefix}" REALPATH)
  string(FIND "${loaded_sparq}" "=> ${real_prefix}/" from_prefix)
  if(from_prefix EQUAL -1)
    string(FIND "${loaded_sparq}" "=> ${prefix}/" from_prefix)
  endif()
  if(from_prefix EQUAL -1)
    message(FATAL_ERROR "installed sparq-eval does not load libsparq from ${prefix}:\n${loaded}")
  endif()
  message(STATUS "installed sparq-eval loads ${loaded_sparq}")
endif()

# Only the scratch prefix: no package registry, so the build tree cannot be found instead.
run_step("configure consumer" "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/examples/consumer"
         -B "${consumer_build}" ${configure_args}
         "-DCMAKE_BUILD_TYPE=${sparq_CMAKE_BUILD_TYPE}" "-DCMAKE_PREFIX_PATH=${prefix}"
         -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -Wdev -Werror=dev)
load_cache("${consumer_build}" READ_WITH_PREFIX consumer_ sparq_DIR)
string(FIND "${consumer_sparq_DIR}" "${prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "the consumer found sparq at '${consumer_sparq_DIR}', not in ${prefix}")
endif()

run_step("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}"
         --config "${sparq_CMAKE_BUILD_TYPE}")

find_program(consumer NAMES sparq_consumer
             PATHS "${consumer_build}" "${consumer_build}/${sparq_CMAKE_BUILD_TYPE}"
             NO_DEFAULT_PATH REQUIRED)
# The installed library, ahead of anything else on the loader's path.
set(library_path "${libdir}")
if(NOT "$ENV{LD_LIBRARY_PATH}" STREQUAL "")
  string(APPEND library_path ":$ENV{LD_LIBRARY_PATH}")
endif()
run_step("run consumer" "${CMAKE_COMMAND}" -E env "LD_LIBRARY_PATH=${library_path}" "${consumer}")
message(STATUS "consumer output:\n${step_output}")
if(NOT step_output MATCHES "kernel (jit|cpp):int8-4x1:")
  message(FATAL_ERROR "the consumer did not report a 4x1 int8 kernel:\n${step_output}")
endif()
