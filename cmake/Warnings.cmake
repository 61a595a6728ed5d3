# packtrain_set_warnings(target): the project's warning set, applied to our own
# targets only (never globally), so third-party headers keep their own.
function(packtrain_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wnon-virtual-dtor
    -Wno-unused-parameter    # LibTorch's module API passes unused options
    -Wno-missing-field-initializers  # designated initializers leave the rest defaulted on purpose
    -Winvalid-pch)           # a precompiled header silently not used is a 10x slower build: say so
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE
      -Wshadow=local
      -Wno-restrict)         # GCC 12 false positive on std::string concatenation (GCC bug 105329)
  elseif(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    # The lock discipline is checked by the compiler: a member marked
    # PACKTRAIN_GUARDED_BY touched without its mutex, or a function marked
    # PACKTRAIN_REQUIRES called without it, does not compile (mutex.hpp).
    target_compile_options(${target} PRIVATE -Wthread-safety -Werror=thread-safety)
  endif()
  if(PACKTRAIN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
