#pragma once
// Number formatting shared by the views: durations, bytes, rates and fractions as a person
// reads them ("12.3 ms", "41.2 GiB", "3.05e5 tokens/s", "52.1 %").

#include <optional>

#include <QString>

namespace tandem::gui {

QString formatDuration(double seconds);       // "12.3 ms"
QString formatBytes(double bytes);            // "41.2 GiB"
QString formatCount(double value);            // "1.23 M", "512"
QString formatPercent(double fraction);       // 0.521 -> "52.1 %"
QString formatNumber(double value, int significant = 4);
QString formatOptional(const std::optional<double>& value, QString (*format)(double));

}  // namespace tandem::gui
