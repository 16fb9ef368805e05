// TANDEM_COMM_TIMEOUT_S parsing and MPI launch detection, both read from the environment.

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "comm/launch.hpp"

namespace tandem::comm {
namespace {

// Saves the given variables, unsets them, and restores them afterwards.
class ScopedEnvironment {
 public:
  explicit ScopedEnvironment(std::vector<std::string> names) : names_(std::move(names)) {
    for (const std::string& name : names_) {
      const char* value = std::getenv(name.c_str());
      saved_[name] = value ? std::optional<std::string>(value) : std::nullopt;
      unsetenv(name.c_str());
    }
  }
  ~ScopedEnvironment() {
    for (const std::string& name : names_) {
      if (saved_[name]) {
        setenv(name.c_str(), saved_[name]->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }
  void set(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
  }

 private:
  std::vector<std::string> names_;
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(CommTimeoutEnvironment, UnsetOrEmptyMeansTheDefault) {
  ScopedEnvironment environment({"TANDEM_COMM_TIMEOUT_S"});
  EXPECT_EQ(timeout_seconds_from_environment(), 600.0);
  EXPECT_EQ(kDefaultTimeoutSeconds, 600.0);
  environment.set("TANDEM_COMM_TIMEOUT_S", "");
  EXPECT_EQ(timeout_seconds_from_environment(), 600.0);
}

TEST(CommTimeoutEnvironment, SecondsAndZero) {
  ScopedEnvironment environment({"TANDEM_COMM_TIMEOUT_S"});
  environment.set("TANDEM_COMM_TIMEOUT_S", "2.5");
  EXPECT_EQ(timeout_seconds_from_environment(), 2.5);
  environment.set("TANDEM_COMM_TIMEOUT_S", "30");
  EXPECT_EQ(timeout_seconds_from_environment(), 30.0);
  EXPECT_EQ(make_single_process_communicator()->timeout_seconds(), 30.0);
  environment.set("TANDEM_COMM_TIMEOUT_S", "0");
  EXPECT_EQ(timeout_seconds_from_environment(), 0.0);
}

TEST(CommTimeoutEnvironment, NonsenseIsAClearError) {
  ScopedEnvironment environment({"TANDEM_COMM_TIMEOUT_S"});
  for (const char* bad : {"ten", "-1", "5s", "inf", "nan", "1e999"}) {
    environment.set("TANDEM_COMM_TIMEOUT_S", bad);
    try {
      timeout_seconds_from_environment();
      ADD_FAILURE() << "accepted TANDEM_COMM_TIMEOUT_S=" << bad;
    } catch (const CommError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(std::string("TANDEM_COMM_TIMEOUT_S=\"") + bad + "\""),
                std::string::npos)
          << message;
      EXPECT_NE(message.find("seconds"), std::string::npos) << message;
    }
    EXPECT_THROW(make_single_process_communicator(), CommError) << bad;
  }
}

const std::vector<std::string> kLaunchVariables = {
    "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK",
    "MV2_COMM_WORLD_SIZE",  "MV2_COMM_WORLD_RANK",  "MV2_COMM_WORLD_LOCAL_RANK",
    "PMI_SIZE",             "PMI_RANK",             "MPI_LOCALRANKID",
    "PMIX_RANK"};

TEST(MpiLaunchDetection, PlainProcessIsNotLaunched) {
  ScopedEnvironment environment(kLaunchVariables);
  const MpiLaunch launch = detect_mpi_launch();
  EXPECT_FALSE(launch.launched);
  EXPECT_EQ(launch.world_size, 1);
  EXPECT_EQ(launch.world_rank, 0);
  EXPECT_EQ(launch.launcher, "");
}

TEST(MpiLaunchDetection, OpenMpiVariables) {
  ScopedEnvironment environment(kLaunchVariables);
  environment.set("OMPI_COMM_WORLD_SIZE", "4");
  environment.set("OMPI_COMM_WORLD_RANK", "3");
  environment.set("OMPI_COMM_WORLD_LOCAL_RANK", "1");
  const MpiLaunch launch = detect_mpi_launch();
  EXPECT_TRUE(launch.launched);
  EXPECT_EQ(launch.world_size, 4);
  EXPECT_EQ(launch.world_rank, 3);
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_EQ(launch.launcher, "Open MPI");
}

TEST(MpiLaunchDetection, HydraAndPmixVariables) {
  ScopedEnvironment environment(kLaunchVariables);
  environment.set("PMI_SIZE", "8");
  environment.set("PMI_RANK", "5");
  MpiLaunch launch = detect_mpi_launch();
  EXPECT_TRUE(launch.launched);
  EXPECT_EQ(launch.world_size, 8);
  EXPECT_EQ(launch.world_rank, 5);
  EXPECT_EQ(launch.launcher, "MPICH/Hydra");

  unsetenv("PMI_SIZE");
  unsetenv("PMI_RANK");
  environment.set("PMIX_RANK", "2");
  launch = detect_mpi_launch();
  EXPECT_TRUE(launch.launched);
  EXPECT_EQ(launch.world_rank, 2);
  EXPECT_EQ(launch.world_size, 0);  // PMIx alone does not say
  EXPECT_EQ(launch.launcher, "PMIx");
}

}  // namespace
}  // namespace tandem::comm
