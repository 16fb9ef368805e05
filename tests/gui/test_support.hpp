#pragma once
// Shared by the tandem-studio QtTest suites: a main() that defaults to the offscreen platform
// and keeps settings away from the user's, and small helpers.

#include <QApplication>
#include <QStandardPaths>
#include <QString>
#include <QtTest>

#define TANDEM_GUI_TEST_MAIN(TestClass)                                                   \
  int main(int argc, char** argv) {                                                       \
    if (!qEnvironmentVariableIsSet("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen"); \
    QStandardPaths::setTestModeEnabled(true);                                             \
    QApplication application(argc, argv);                                                 \
    QApplication::setOrganizationName(QStringLiteral("TandemTests"));                    \
    QApplication::setApplicationName(QStringLiteral("tandem-studio-tests"));             \
    TestClass test;                                                                       \
    return QTest::qExec(&test, argc, argv);                                               \
  }

namespace tandem::gui::testing {

inline QString sourcePath(const QString& relative) {
  return QStringLiteral(TANDEM_SOURCE_DIR) + QLatin1Char('/') + relative;
}

}  // namespace tandem::gui::testing
