// tandem-studio [scenario.yaml]: the Qt desktop app (gui/main_window.hpp).
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QTimer>

#include "gui/main_window.hpp"
#include "gui/screenshot_tour.hpp"
#include "report/run_store.hpp"
#include "tandem/version.hpp"

int main(int argc, char** argv) {
  QApplication application(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("Tandem"));
  QApplication::setApplicationName(QStringLiteral("tandem-studio"));
  QApplication::setApplicationVersion(QStringLiteral("%1 (git %2)").arg(QLatin1String(tandem::kVersion),
                                                                       QLatin1String(tandem::kGitRevision)));

  QCommandLineParser parser;
  parser.setApplicationDescription(QStringLiteral(
      "Tandem Studio: edit scenarios, run the twin, sweep strategies and browse the run store."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(QStringLiteral("scenario"),
                               QStringLiteral("Scenario YAML to open (default: the built-in default scenario)."),
                               QStringLiteral("[scenario.yaml]"));
  QCommandLineOption database({QStringLiteral("db")},
                              QStringLiteral("Run store to browse and to record runs in (default: %1).")
                                  .arg(QString::fromStdString(tandem::report::default_database_path().string())),
                              QStringLiteral("runs.db"));
  QCommandLineOption screenshots({QStringLiteral("screenshots")},
                                 QStringLiteral("Run the scenario, save PNGs of the main views into DIR and quit "
                                                "(used by gui/screenshots.sh)."),
                                 QStringLiteral("DIR"));
  QCommandLineOption sweep({QStringLiteral("sweep")},
                           QStringLiteral("With --screenshots: the sweep to run for the sweep view, as KEY=V1,V2 "
                                          "(repeatable; default: the scenario's sweep: section)."),
                           QStringLiteral("KEY=V1,V2"));
  parser.addOption(database);
  parser.addOption(screenshots);
  parser.addOption(sweep);
  parser.process(application);

  tandem::gui::MainWindow window;
  const QString database_path = parser.isSet(database)
                                    ? parser.value(database)
                                    : QString::fromStdString(tandem::report::default_database_path().string());
  window.openDatabase(database_path, true);
  const QStringList positional = parser.positionalArguments();
  if (!positional.isEmpty()) {
    if (!window.openScenario(positional.first())) return 1;
  } else {
    window.openBuiltin(QStringLiteral("default"));
  }
  window.show();

  if (parser.isSet(screenshots)) {
    auto* tour = new tandem::gui::ScreenshotTour(&window, parser.value(screenshots), parser.values(sweep), &window);
    QTimer::singleShot(0, tour, &tandem::gui::ScreenshotTour::start);
  }
  return application.exec();
}
