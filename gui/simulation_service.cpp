#include "gui/simulation_service.hpp"

#include <chrono>
#include <thread>

#include <QJsonDocument>
#include <QMetaObject>

#ifdef TANDEM_GUI_HAVE_SIM
#include <nlohmann/json.hpp>

#include "report/run_info.hpp"
#include "report/run_store.hpp"
#include "sim/run_records.hpp"
#include "sim/simulation.hpp"
#endif

namespace tandem::gui {

struct SimulationService::Job {
#ifdef TANDEM_GUI_HAVE_SIM
  sim::CancelToken cancel;
#endif
  std::thread thread;
};

namespace {

#ifdef TANDEM_GUI_HAVE_SIM
QJsonObject toQt(const nlohmann::json& json) {
  return QJsonDocument::fromJson(QByteArray::fromStdString(json.dump())).object();
}

std::unique_ptr<report::RunStore> openStore(const QString& path, QString* warning) {
  if (path.isEmpty()) return nullptr;
  try {
    return std::make_unique<report::RunStore>(report::RunStore::open(path.toStdString()));
  } catch (const std::exception& error) {
    *warning = QStringLiteral("Not recorded in the run store: %1").arg(QString::fromUtf8(error.what()));
    return nullptr;
  }
}

// Calls `emit_progress` at most every 50 ms (the child reports far more often than a bar needs).
class ProgressThrottle {
 public:
  bool due() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(50)) return false;
    last_ = now;
    return true;
  }

 private:
  std::chrono::steady_clock::time_point last_{};
};
#endif

}  // namespace

SimulationService::SimulationService(QObject* parent) : QObject(parent) {
  qRegisterMetaType<tandem::gui::ResultData>();
  qRegisterMetaType<tandem::gui::SweepPointOutcome>();
}

SimulationService::~SimulationService() {
  if (job_) {
#ifdef TANDEM_GUI_HAVE_SIM
    job_->cancel.cancel();
#endif
    if (job_->thread.joinable()) job_->thread.join();
  }
}

bool SimulationService::available() {
#ifdef TANDEM_GUI_HAVE_SIM
  return true;
#else
  return false;
#endif
}

QString SimulationService::unavailableReason() {
#ifdef TANDEM_GUI_HAVE_SIM
  return {};
#else
  return QStringLiteral("This build of tandem-studio has no twin: the sim library (sim/) was not "
                        "built, so scenarios can be edited and stored runs browsed, but not run.");
#endif
}

void SimulationService::setBusy(bool busy) {
  if (busy_ == busy) return;
  busy_ = busy;
  emit busyChanged(busy_);
}

void SimulationService::cancel() {
#ifdef TANDEM_GUI_HAVE_SIM
  if (job_ && busy_) {
    job_->cancel.cancel();
    emit progress(-1, QStringLiteral("Cancelling…"));
  }
#endif
}

bool SimulationService::startRun(std::shared_ptr<const strategy::Scenario> scenario, const QString& title) {
  if (busy_) return false;
  if (!available()) {
    emit failed(unavailableReason());
    return false;
  }
#ifdef TANDEM_GUI_HAVE_SIM
  if (job_ && job_->thread.joinable()) job_->thread.join();
  job_ = std::make_shared<Job>();
  setBusy(true);
  emit progress(0, QStringLiteral("Simulating %1…").arg(title));
  const QString database = database_path_;
  std::shared_ptr<Job> job = job_;
  job->thread = std::thread([this, job, scenario, title, database] {
    QString warning;
    std::unique_ptr<report::RunStore> store = openStore(database, &warning);
    std::string run_id;
    if (store) {
      try {
        run_id = store->begin_run(report::run_info_for(*scenario, report::RunKind::Simulation));
      } catch (const std::exception& error) {
        warning = QStringLiteral("Not recorded in the run store: %1").arg(QString::fromUtf8(error.what()));
        store.reset();
      }
    }
    ProgressThrottle throttle;
    sim::SimulationOptions options;
    sim::SimulationResult result;
    try {
      result = sim::run_simulation_in_child(
          *scenario, options,
          [this, &throttle](double fraction) {
            if (!throttle.due()) return;
            QMetaObject::invokeMethod(this, [this, fraction] { emit progress(fraction, QString()); }, Qt::QueuedConnection);
          },
          &job->cancel);
    } catch (const std::exception& error) {
      result.ok = false;
      result.error = error.what();
    }
    const bool cancelled = job->cancel.cancelled.load();
    if (store) {
      try {
        if (cancelled) store->fail_run(run_id, "cancelled by the user");
        else if (!result.ok) store->fail_run(run_id, result.error);
        else {
          if (!result.trace.empty()) store->add_trace(run_id, 0, result.trace);
          store->finish_run(run_id, sim::result_to_json(result).dump(), sim::headline_of(result));
        }
      } catch (const std::exception& error) {
        warning = QStringLiteral("Not recorded in the run store: %1").arg(QString::fromUtf8(error.what()));
        run_id.clear();
      }
    }
    if (cancelled || !result.ok) {
      const QString message = QString::fromStdString(result.error);
      QMetaObject::invokeMethod(this, [this, cancelled, message] {
        setBusy(false);
        if (cancelled) emit this->cancelled();
        else emit failed(QStringLiteral("The simulation failed: %1").arg(message));
      }, Qt::QueuedConnection);
      return;
    }
    ResultData data;
    data.run_id = QString::fromStdString(run_id);
    data.kind = QStringLiteral("simulation");
    data.title = run_id.empty() ? QStringLiteral("%1 — simulation (not stored)").arg(title)
                                : QStringLiteral("%1 — simulation %2").arg(title, data.run_id);
    data.json = toQt(sim::result_to_json(result));
    data.trace = std::make_shared<const std::vector<report::TraceRecord>>(std::move(result.trace));
    data.trace_steps = {0};
    const double wall = result.wall_seconds;
    QMetaObject::invokeMethod(this, [this, data, warning, wall] {
      setBusy(false);
      emit progress(1, warning.isEmpty() ? QStringLiteral("Simulated in %1 s.").arg(wall, 0, 'f', 1) : warning);
      emit runFinished(data);
    }, Qt::QueuedConnection);
  });
  return true;
#else
  Q_UNUSED(scenario);
  Q_UNUSED(title);
  return false;
#endif
}

bool SimulationService::startSweep(std::shared_ptr<const strategy::Scenario> scenario,
                                   std::vector<strategy::SweepAxis> axes, const QString& title) {
  if (busy_) return false;
  if (!available()) {
    emit failed(unavailableReason());
    return false;
  }
#ifdef TANDEM_GUI_HAVE_SIM
  if (job_ && job_->thread.joinable()) job_->thread.join();
  job_ = std::make_shared<Job>();
  setBusy(true);
  const int total = static_cast<int>(strategy::sweep_points(axes).size());
  emit sweepStarted(total);
  emit progress(0, QStringLiteral("Sweeping %1: 0 of %2 configurations").arg(title).arg(total));
  const QString database = database_path_;
  std::shared_ptr<Job> job = job_;
  job->thread = std::thread([this, job, scenario, axes, title, database] {
    sim::SweepOptions options;
    options.simulation.record_trace = false;  // as simrun: sweeps keep the headline numbers
    std::vector<sim::SweepResult> results;
    QString error_message;
    try {
      results = sim::run_sweep(
          *scenario, axes, options,
          [this, title](std::size_t done, std::size_t all) {
            const double fraction = static_cast<double>(done) / static_cast<double>(std::max<std::size_t>(1, all));
            const QString message = QStringLiteral("Sweeping %1: %2 of %3 configurations").arg(title).arg(done).arg(all);
            QMetaObject::invokeMethod(this, [this, fraction, message] { emit progress(fraction, message); }, Qt::QueuedConnection);
          },
          &job->cancel);
    } catch (const std::exception& error) {
      error_message = QString::fromUtf8(error.what());
    }
    const bool cancelled = job->cancel.cancelled.load();
    // Record the sweep and its points as simrun does (a 'sweep' run with simulation children).
    QString warning;
    std::vector<QString> point_ids(results.size());
    if (!cancelled && error_message.isEmpty()) {
      if (std::unique_ptr<report::RunStore> store = openStore(database, &warning)) {
        try {
          // Recorded as simrun records it: a 'sweep' run with one simulation run per point.
          const sim::RecordedSweep recorded = sim::record_sweep(*store, *scenario, results);
          for (std::size_t i = 0; i < recorded.points.size(); ++i) point_ids[i] = QString::fromStdString(recorded.points[i]);
        } catch (const std::exception& error) {
          warning = QStringLiteral("Not recorded in the run store: %1").arg(QString::fromUtf8(error.what()));
        }
      }
    }
    std::vector<SweepPointOutcome> outcomes;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const sim::SweepResult& point = results[i];
      if (!point.simulated && point.reason.empty()) continue;  // never started (cancelled)
      SweepPointOutcome outcome;
      outcome.index = static_cast<int>(i);
      outcome.overrides = point.overrides;
      outcome.feasible = point.feasible;
      outcome.reason = QString::fromStdString(point.reason);
      if (point.simulated) outcome.json = toQt(sim::result_to_json(point.result));
      outcome.run_id = point_ids[i];
      outcomes.push_back(std::move(outcome));
    }
    const int total_points = static_cast<int>(results.size());
    QMetaObject::invokeMethod(this, [this, outcomes, cancelled, error_message, warning, total_points] {
      int completed = 0;
      for (const SweepPointOutcome& outcome : outcomes) {
        emit sweepPointFinished(outcome);
        if (!outcome.json.isEmpty()) ++completed;
      }
      setBusy(false);
      if (!error_message.isEmpty()) {
        emit failed(QStringLiteral("The sweep failed: %1").arg(error_message));
      } else if (cancelled) {
        emit this->cancelled();
      } else {
        emit progress(1, warning);
        emit sweepFinished(completed, total_points);
      }
    }, Qt::QueuedConnection);
  });
  return true;
#else
  Q_UNUSED(scenario);
  Q_UNUSED(axes);
  Q_UNUSED(title);
  return false;
#endif
}

}  // namespace tandem::gui
