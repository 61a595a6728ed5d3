// packtrain built without MPI (PACKTRAIN_WITH_MPI=OFF): the same API, which
// says so when asked to run under mpirun.
#include <packtrain/distributed/mpi_sharing.hpp>

#include <packtrain/scheduler/error.hpp>

#include <cstdlib>

namespace packtrain::distributed {
namespace {

[[noreturn]] void no_mpi() {
  throw Error("packtrain was built without MPI (PACKTRAIN_WITH_MPI=OFF): rebuild with it to run under mpirun");
}

}  // namespace

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}
bool mpi_available() { return false; }
std::string mpi_version() { return ""; }

MpiSession::MpiSession(bool) { no_mpi(); }
MpiSession::~MpiSession() = default;
std::string MpiSession::broadcast(const std::string& text) { return text; }
bool MpiSession::all_ok(bool ok) { return ok; }
int MpiSession::sum(int value) { return value; }
int MpiSession::min(int value) { return value; }
NodeShare MpiSession::node_share(const std::vector<int>& usable, bool) { return {.cores = usable, .processes = 1}; }

struct MpiGangComm::Impl {};
MpiGangComm::MpiGangComm(MpiSession&) { no_mpi(); }
MpiGangComm::MpiGangComm(std::unique_ptr<Impl>) { no_mpi(); }
std::vector<std::unique_ptr<MpiGangComm>> MpiGangComm::lanes(MpiSession&, int, int) { no_mpi(); }
MpiGangComm::~MpiGangComm() = default;
int MpiGangComm::rank() const { return 0; }
int MpiGangComm::size() const { return 1; }
void MpiGangComm::allgather(const void*, std::size_t, void*) { no_mpi(); }
std::uint64_t MpiGangComm::start_allgather(const void*, std::size_t, void*) { no_mpi(); }
void MpiGangComm::wait(std::uint64_t) { no_mpi(); }
void MpiGangComm::agree(const void*, std::size_t, void*, double, const std::string&) { no_mpi(); }
bool MpiGangComm::unfinished() const { return false; }
void MpiGangComm::abort_if_unfinished(const std::string&) {}
std::int64_t MpiGangComm::exchanges() const { return 0; }
std::int64_t MpiGangComm::bytes_sent() const { return 0; }
double MpiGangComm::seconds() const { return 0; }

struct MpiWorkSharing::Impl {};
MpiWorkSharing::MpiWorkSharing(MpiSession&, JobRunner&, std::filesystem::path, std::function<int(int)>) { no_mpi(); }
MpiWorkSharing::~MpiWorkSharing() = default;
void MpiWorkSharing::finish() {}
SharingStats MpiWorkSharing::stats() const { return {}; }
bool MpiWorkSharing::starts_with(int) { return true; }
void MpiWorkSharing::idle() {}
void MpiWorkSharing::ended(int, const JobRecord&) {}
void MpiWorkSharing::work_available() {}

}  // namespace packtrain::distributed
