#include "command_entry.hpp"

#include <cstdio>

namespace packtrain::cli {

std::unique_ptr<CommandEntry> make_kfold_entry();    // kfold_command.cpp
std::unique_ptr<CommandEntry> make_lth_entry();      // lth_command.cpp
std::unique_ptr<CommandEntry> make_hogwild_entry();  // hogwild_command.cpp
std::unique_ptr<CommandEntry> make_train_entry();    // train_command.cpp

boost::program_options::options_description& CommandEntry::options() {
  if (!desc_) {
    desc_ = std::make_unique<boost::program_options::options_description>(description());
    add_common_options(*desc_, common);
    add_options(*desc_);
  }
  return *desc_;
}

std::unique_ptr<CommandEntry> make_entry(const std::string& command) {
  if (command == "kfold") return make_kfold_entry();
  if (command == "lth") return make_lth_entry();
  if (command == "hogwild") return make_hogwild_entry();
  if (command == "train") return make_train_entry();
  return nullptr;
}

int run_command(CommandEntry& entry, int argc, char** argv) {
  if (!parse_options(argc, argv, entry.options(), entry.usage(), entry.common)) return 0;
  // Everything that can be wrong with the request is checked before
  // anything is written: options, then (plan) cores, data and jobs, then
  // (open_run) the output folder.
  entry.check_options();
  RunSetup setup(entry.common, entry.command(), entry.serial());
  auto jobs = entry.plan(setup);
  setup.open_run(entry.meta, std::move(jobs), entry.columns);
  const auto run = setup.run();
  nlohmann::json summary = setup.summary_json(run);
  const auto text = entry.summarize(setup, run, summary);
  // Report meta known only now (lth's dense accuracy, the plot's reference line).
  if (setup.is_root())
    for (const auto& [key, value] : entry.meta.items())
      if (key == "plot_reference") setup.journal().set_meta(key, value.dump());
  setup.finish(run, summary);
  if (setup.is_root()) std::printf("%s", text.c_str());
  setup.print_outputs();
  return run.exit_code();
}

}  // namespace packtrain::cli
