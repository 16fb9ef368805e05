#pragma once
// `tandem-studio --screenshots DIR`: drives the real window through the main views — the
// editor, a real run of the scenario (result with timeline), a sweep, the history with two runs
// compared, predicted vs measured — saves a PNG of each into DIR and quits. gui/screenshots.sh
// runs it under Xvfb so a reviewer can look at the app without a display.

#include <QObject>
#include <utility>

#include <QStringList>

class QTimer;

namespace tandem::gui {

class MainWindow;

class ScreenshotTour : public QObject {
  Q_OBJECT

 public:
  ScreenshotTour(MainWindow* window, const QString& directory, const QStringList& sweep_arguments,
                 QObject* parent = nullptr);
  void start();

 private:
  void save(const QString& name);
  void fail(const QString& message);
  void afterRun();
  void afterSweep();
  void finish();
  // The newest real run and the newest simulation (with a trace) of the same name, if any.
  std::pair<QString, QString> predictionAndMeasurement() const;

  MainWindow* window_;
  QString directory_;
  QStringList sweep_arguments_;
  QTimer* deadline_ = nullptr;
  QStringList saved_;
};

}  // namespace tandem::gui
