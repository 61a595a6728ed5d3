#pragma once
// For the dataset readers' tests: a call that must fail with one line.
#include <packtrain/scheduler/error.hpp>

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace packtrain::testing {

// Runs `body`, expecting a packtrain::Error whose one-line message contains every one of `parts`.
template <typename Body>
void expect_error(Body&& body, std::initializer_list<std::string> parts) {
  try {
    body();
    FAIL() << "no packtrain::Error thrown";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    for (const auto& part : parts) EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' not in: " << what;
  }
}

}  // namespace packtrain::testing
