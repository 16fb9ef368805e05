#include "gui/run_panel.hpp"

#include <algorithm>
#include <cmath>

#include <QElapsedTimer>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QVBoxLayout>

#include "gui/simulation_service.hpp"

namespace tandem::gui {

RunPanel::RunPanel(SimulationService* service, const QString& run_label, QWidget* parent)
    : QWidget(parent), service_(service) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* buttons = new QHBoxLayout;
  run_ = new QPushButton(run_label, this);
  run_->setObjectName(QStringLiteral("runButton"));
  run_->setDefault(true);
  cancel_ = new QPushButton(QStringLiteral("Cancel"), this);
  cancel_->setObjectName(QStringLiteral("cancelButton"));
  cancel_->setToolTip(QStringLiteral("Stop the simulation (ends its child process)"));
  progress_ = new QProgressBar(this);
  progress_->setObjectName(QStringLiteral("runProgress"));
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  progress_->setTextVisible(false);
  buttons->addWidget(run_);
  buttons->addWidget(cancel_);
  buttons->addWidget(progress_, 1);
  layout->addLayout(buttons);
  status_ = new QLabel(this);
  status_->setObjectName(QStringLiteral("runStatus"));
  status_->setWordWrap(true);
  layout->addWidget(status_);

  connect(run_, &QPushButton::clicked, this, &RunPanel::runRequested);
  connect(cancel_, &QPushButton::clicked, service_, &SimulationService::cancel);
  connect(service_, &SimulationService::busyChanged, this, [this](bool busy) {
    if (busy) progress_->setValue(0);
    refresh();
  });
  connect(service_, &SimulationService::progress, this, [this](double fraction, const QString& message) {
    if (fraction < 0) {
      progress_->setRange(0, 0);  // busy indicator while the fraction is unknown
    } else {
      progress_->setRange(0, 1000);
      progress_->setValue(static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * 1000)));
    }
    if (!message.isEmpty()) setStatus(message);
  });
  connect(service_, &SimulationService::failed, this, [this](const QString& message) {
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    setStatus(message, true);
  });
  connect(service_, &SimulationService::cancelled, this, [this] {
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    setStatus(QStringLiteral("Cancelled."));
  });
  if (!SimulationService::available()) setStatus(SimulationService::unavailableReason(), true);
  refresh();
}

void RunPanel::setStatus(const QString& text, bool error) {
  status_->setText(text);
  status_->setStyleSheet(error ? QStringLiteral("color: #c62828;") : QString());
}

void RunPanel::setReady(bool ready, const QString& why_not) {
  ready_ = ready;
  why_not_ = why_not;
  refresh();
}

void RunPanel::refresh() {
  const bool busy = service_->busy();
  run_->setEnabled(!busy && ready_ && SimulationService::available());
  run_->setToolTip(!SimulationService::available() ? SimulationService::unavailableReason()
                   : ready_                         ? QStringLiteral("Simulate in the background (Ctrl+R)")
                                                    : why_not_);
  cancel_->setEnabled(busy);
}

}  // namespace tandem::gui
