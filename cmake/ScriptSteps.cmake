# Steps shared by the scripts ctest runs with `cmake -P` (RunSanitizedTests,
# RunFuzzTests), which build parts of packtrain in folders of their own.

# Runs a command; a non-zero exit fails the script, naming the command.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

# A folder configured with another C++ compiler than `compiler` is started
# afresh: CMake cannot change the compiler of a configured build.
function(packtrain_fresh_if_other_compiler binary_dir compiler)
  if(compiler AND EXISTS ${binary_dir}/CMakeCache.txt)
    file(STRINGS ${binary_dir}/CMakeCache.txt cached REGEX "^CMAKE_CXX_COMPILER:")
    string(REGEX REPLACE "^CMAKE_CXX_COMPILER:[A-Z]+=" "" cached "${cached}")
    if(NOT cached STREQUAL compiler)
      file(REMOVE_RECURSE ${binary_dir})
    endif()
  endif()
endfunction()
