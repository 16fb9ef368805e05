#pragma once
// Run controls: Run and Cancel buttons, a progress bar and a status line, following a
// SimulationService. The Run button asks (runRequested); the main window decides what to run.

#include <QWidget>

class QLabel;
class QProgressBar;
class QPushButton;

namespace tandem::gui {

class SimulationService;

class RunPanel : public QWidget {
  Q_OBJECT

 public:
  RunPanel(SimulationService* service, const QString& run_label, QWidget* parent = nullptr);

  QPushButton* runButton() const { return run_; }
  QPushButton* cancelButton() const { return cancel_; }
  QProgressBar* progressBar() const { return progress_; }
  QLabel* statusLabel() const { return status_; }
  void setStatus(const QString& text, bool error = false);
  // Run is enabled only when the service is idle and `ready` (a valid scenario).
  void setReady(bool ready, const QString& why_not = {});

 signals:
  void runRequested();

 private:
  void refresh();

  SimulationService* service_;
  QPushButton* run_ = nullptr;
  QPushButton* cancel_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* status_ = nullptr;
  bool ready_ = false;
  QString why_not_;
};

}  // namespace tandem::gui
