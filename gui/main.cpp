// tandem-studio [--db runs.db] [scenario.yaml]: the Qt desktop app (gui/main_window.hpp).
#include <cstdio>

#include <QApplication>
#include <QCommandLineParser>
#include <QFileInfo>
#include <QTimer>

#include "gui/main_window.hpp"
#include "gui/screenshot_tour.hpp"
#include "report/run_store.hpp"
#include "tandem/version.hpp"

namespace {

void describeApplication() {
  QCoreApplication::setOrganizationName(QStringLiteral("Tandem"));
  QCoreApplication::setApplicationName(QStringLiteral("tandem-studio"));
  QCoreApplication::setApplicationVersion(QStringLiteral("%1 (git %2)").arg(QLatin1String(tandem::kVersion),
                                                                           QLatin1String(tandem::kGitRevision)));
}

void defineOptions(QCommandLineParser& parser) {
  parser.setApplicationDescription(QStringLiteral(
      "Tandem Studio: edit scenarios, run the twin, sweep strategies and browse the run store."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(QStringLiteral("scenario"),
                               QStringLiteral("Scenario YAML to open (default: the built-in default scenario)."),
                               QStringLiteral("[scenario.yaml]"));
  parser.addOption({{QStringLiteral("db")},
                    QStringLiteral("Run store to browse and to record runs in (default: %1).")
                        .arg(QString::fromStdString(tandem::report::default_database_path().string())),
                    QStringLiteral("runs.db")});
  parser.addOption({{QStringLiteral("screenshots")},
                    QStringLiteral("Run the scenario, save PNGs of the main views into DIR and quit "
                                   "(used by gui/screenshots.sh)."),
                    QStringLiteral("DIR")});
  parser.addOption({{QStringLiteral("sweep")},
                    QStringLiteral("With --screenshots: the sweep for the sweep view, KEY=V1,V2 (repeatable; "
                                   "default: the scenario's sweep: section)."),
                    QStringLiteral("KEY=V1,V2")});
}

}  // namespace

int main(int argc, char** argv) {
  // --help and --version answer without a display, which a QApplication would need.
  for (int i = 1; i < argc; ++i) {
    const QByteArray argument(argv[i]);
    if (argument == "-h" || argument == "--help" || argument == "--help-all" || argument == "-v" ||
        argument == "--version") {
      QCoreApplication text_only(argc, argv);
      describeApplication();
      QCommandLineParser parser;
      defineOptions(parser);
      parser.process(text_only);  // prints and exits
      return 0;
    }
  }

  QApplication application(argc, argv);
  describeApplication();
  QCommandLineParser parser;
  defineOptions(parser);
  parser.process(application);

  const QStringList positional = parser.positionalArguments();
  if (!positional.isEmpty() && !QFileInfo(positional.first()).isReadable()) {
    std::fprintf(stderr, "tandem-studio: cannot read %s\n", positional.first().toLocal8Bit().constData());
    return 1;
  }

  tandem::gui::MainWindow window;
  const QString database = parser.isSet(QStringLiteral("db"))
                               ? parser.value(QStringLiteral("db"))
                               : QString::fromStdString(tandem::report::default_database_path().string());
  window.openDatabase(database, true);
  if (!positional.isEmpty()) {
    if (!window.openScenario(positional.first())) return 1;
  } else {
    window.openBuiltin(QStringLiteral("default"));
  }
  window.show();

  if (parser.isSet(QStringLiteral("screenshots"))) {
    auto* tour = new tandem::gui::ScreenshotTour(&window, parser.value(QStringLiteral("screenshots")),
                                                 parser.values(QStringLiteral("sweep")), &window);
    QTimer::singleShot(0, tour, &tandem::gui::ScreenshotTour::start);
  }
  return application.exec();
}
