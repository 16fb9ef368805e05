#pragma once
// Runs the twin for the GUI: one simulation or a sweep at a time, off the GUI thread, each
// simulation in a child process (the sim library's contract: SimGrid's global state does not
// reset within a process, and ending the child is how a run is cancelled). Progress, results
// and failures arrive as queued signals, so the window never waits on a simulation.

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <QObject>
#include <QString>

#include "gui/result_data.hpp"
#include "strategy/scenario.hpp"

namespace tandem::gui {

struct SweepPointOutcome {
  int index = 0;
  std::vector<std::pair<std::string, std::string>> overrides;  // (key, value) in axis order
  bool feasible = false;
  QString reason;     // why not, when infeasible or failed
  QJsonObject json;   // the result fields when simulated
  QString run_id;     // in the store, when stored
};

class SimulationService : public QObject {
  Q_OBJECT

 public:
  explicit SimulationService(QObject* parent = nullptr);
  ~SimulationService() override;

  // Whether this build has the twin library; if not, why.
  static bool available();
  static QString unavailableReason();

  bool busy() const { return busy_; }
  // Runs are recorded in this store ("" = not stored). Default: the user's default store.
  void setDatabasePath(const QString& path) { database_path_ = path; }
  QString databasePath() const { return database_path_; }

  // Starts a simulation of a validated scenario; false when busy or unavailable.
  bool startRun(std::shared_ptr<const strategy::Scenario> scenario, const QString& title);
  // Starts a sweep over the cartesian product of `axes` applied to the scenario's document.
  bool startSweep(std::shared_ptr<const strategy::Scenario> scenario,
                  std::vector<strategy::SweepAxis> axes, const QString& title);
  // Ends the running child process(es); `cancelled` follows.
  void cancel();

 signals:
  void busyChanged(bool busy);
  void progress(double fraction, const QString& message);
  void runFinished(const tandem::gui::ResultData& result);
  void sweepStarted(int points);
  void sweepPointFinished(const tandem::gui::SweepPointOutcome& outcome);
  void sweepFinished(int completed, int total);
  void failed(const QString& message);
  void cancelled();

 private:
  struct Job;
  void setBusy(bool busy);

  bool busy_ = false;
  QString database_path_;
  std::shared_ptr<Job> job_;
};

}  // namespace tandem::gui

Q_DECLARE_METATYPE(tandem::gui::SweepPointOutcome)
