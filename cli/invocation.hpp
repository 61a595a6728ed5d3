#pragma once
// The command line packtrain was started with, kept by main(): what the
// line printed after a preemption or a crash tells the user to run again.
#include <string>
#include <vector>

namespace packtrain::cli {

// main() calls it first; the rest read it.
void remember_invocation(int argc, char** argv);
const std::vector<std::string>& invocation();

// The words as a shell line: plain words as they are, others in single quotes.
std::string shell_line(const std::vector<std::string>& words);

// This invocation with --resume (added unless it is there already), as a
// shell line: "packtrain kfold --models mlp --out runs/a --resume".
std::string resume_line();

}  // namespace packtrain::cli
