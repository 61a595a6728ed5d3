#pragma once
// One function per subcommand, each in its own file. argv[0] is the
// subcommand's name. They return the process exit status (docs/cli.md):
// 0 all done, 1 some jobs failed, 2 bad usage or input, 130 interrupted,
// 143 preempted (SIGTERM, SIGUSR1).
// A packtrain::Error thrown out of one becomes a one-line error and exit 2.

namespace packtrain::cli {

int train_command(int argc, char** argv);
int kfold_command(int argc, char** argv);
int report_command(int argc, char** argv);
int lth_command(int argc, char** argv);
int hogwild_command(int argc, char** argv);
int simulate_command(int argc, char** argv);
int batch_command(int argc, char** argv);

}  // namespace packtrain::cli
