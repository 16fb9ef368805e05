#include "gui/format.hpp"

#include <cmath>

#include "strategy/units.hpp"

namespace tandem::gui {

QString formatDuration(double seconds) {
  if (!std::isfinite(seconds)) return QStringLiteral("—");
  return QString::fromStdString(strategy::format_duration(seconds));
}

QString formatBytes(double bytes) {
  if (!std::isfinite(bytes)) return QStringLiteral("—");
  return QString::fromStdString(strategy::format_bytes(bytes));
}

QString formatCount(double value) {
  if (!std::isfinite(value)) return QStringLiteral("—");
  const double magnitude = std::fabs(value);
  if (magnitude >= 1e12) return QStringLiteral("%1 T").arg(value / 1e12, 0, 'g', 4);
  if (magnitude >= 1e9) return QStringLiteral("%1 G").arg(value / 1e9, 0, 'g', 4);
  if (magnitude >= 1e6) return QStringLiteral("%1 M").arg(value / 1e6, 0, 'g', 4);
  if (magnitude >= 1e4) return QStringLiteral("%1 k").arg(value / 1e3, 0, 'g', 4);
  if (magnitude >= 1000) return QString::number(value, 'f', 0);
  return QString::number(value, 'g', 4);
}

QString formatPercent(double fraction) {
  if (!std::isfinite(fraction)) return QStringLiteral("—");
  return QStringLiteral("%1 %").arg(fraction * 100.0, 0, 'f', 1);
}

QString formatNumber(double value, int significant) {
  if (!std::isfinite(value)) return QStringLiteral("—");
  return QString::number(value, 'g', significant);
}

QString formatOptional(const std::optional<double>& value, QString (*format)(double)) {
  return value ? format(*value) : QStringLiteral("—");
}

}  // namespace tandem::gui
