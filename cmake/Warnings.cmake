# packtrain_set_warnings(target): the project's warning set, applied to our own
# targets only (never globally), so third-party headers keep their own.
function(packtrain_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor
    -Wno-unused-parameter    # LibTorch's module API passes unused options
    -Wno-missing-field-initializers  # designated initializers leave the rest defaulted on purpose
    -Wno-restrict            # GCC 12 false positive on std::string concatenation (GCC bug 105329)
    -Winvalid-pch)           # a precompiled header silently not used is a 10x slower build: say so
  if(PACKTRAIN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
