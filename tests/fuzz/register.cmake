# The short fuzz run as ctest entries, for `packaging/dev.sh test` (.ci/run).
# Included from tests/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/fuzz/register.cmake OPTIONAL)
# fuzz.build builds the harnesses with clang into <build>/fuzz (a CMake
# project of its own, tests/fuzz/CMakeLists.txt); then each fuzz.<name>
# replays its regression inputs and fuzzes for GUESTD_FUZZ_SECONDS (with a
# fixed seed when CI is set). Label "fuzz"; without clang nothing is added.
find_program(GUESTD_CLANG NAMES clang clang-14)
if(NOT GUESTD_CLANG)
  message(STATUS "fuzz: clang not found; the short fuzz run is not registered")
  return()
endif()
set(GUESTD_FUZZ_SECONDS 10 CACHE STRING "Seconds each fuzz harness runs under ctest")
set(_fuzz_dir ${CMAKE_CURRENT_LIST_DIR})
set(_fuzz_build ${CMAKE_BINARY_DIR}/fuzz)

add_test(NAME fuzz.build
  COMMAND ${_fuzz_dir}/run.sh --build-only --build-dir ${_fuzz_build})
set_tests_properties(fuzz.build PROPERTIES
  TIMEOUT 900 LABELS fuzz FIXTURES_SETUP guestd_fuzz_build
  ENVIRONMENT "CC=${GUESTD_CLANG}")

file(GLOB _fuzz_harnesses CONFIGURE_DEPENDS ${_fuzz_dir}/fuzz_*.c)
foreach(_src ${_fuzz_harnesses})
  get_filename_component(_name ${_src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" _name ${_name})
  add_test(NAME fuzz.${_name}
    COMMAND ${_fuzz_dir}/run.sh --no-build --only ${_name}
            --seconds ${GUESTD_FUZZ_SECONDS} --build-dir ${_fuzz_build})
  set_tests_properties(fuzz.${_name} PROPERTIES
    TIMEOUT 300 LABELS fuzz FIXTURES_REQUIRED guestd_fuzz_build SKIP_RETURN_CODE 77
    ENVIRONMENT "CC=${GUESTD_CLANG}")
endforeach()
