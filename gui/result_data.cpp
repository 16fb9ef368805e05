#include "gui/result_data.hpp"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonParseError>
#include <QStringList>

namespace tandem::gui {
namespace {

std::optional<double> numberOf(const QJsonValue& value) {
  if (value.isDouble()) return value.toDouble();
  if (value.isBool()) return value.toBool() ? 1.0 : 0.0;
  return std::nullopt;
}

QJsonValue valueAt(const QJsonObject& root, const QString& path) {
  QJsonValue current = root;
  for (const QString& part : path.split(QLatin1Char('.'))) {
    if (!current.isObject()) return {};
    current = current.toObject().value(part);
  }
  return current;
}

MemoryBar barFrom(const QJsonObject& object, const QString& label) {
  MemoryBar bar;
  bar.label = label;
  bar.weights = object.value(QStringLiteral("weights")).toDouble();
  bar.gradients = object.value(QStringLiteral("gradients")).toDouble();
  bar.optimizer = object.value(QStringLiteral("optimizer")).toDouble();
  bar.activations = object.value(QStringLiteral("activations")).toDouble();
  // A peak that is more than the four parts (buffers, workspace) shows as "other".
  for (const char* key : {"peak_bytes_per_gpu", "peak_bytes", "total_bytes", "total"}) {
    const QJsonValue peak = object.value(QLatin1String(key));
    if (peak.isDouble()) {
      const double rest = peak.toDouble() - bar.total();
      if (rest > 1e-6 * peak.toDouble()) bar.other = rest;
      break;
    }
  }
  return bar;
}

}  // namespace

std::optional<double> ResultData::number(const QString& path) const {
  return numberOf(valueAt(json, path));
}

std::optional<bool> ResultData::boolean(const QString& path) const {
  const QJsonValue value = valueAt(json, path);
  if (value.isBool()) return value.toBool();
  return std::nullopt;
}

std::vector<std::pair<QString, double>> ResultData::breakdown() const {
  std::vector<std::pair<QString, double>> parts;
  const QJsonObject object = json.value(QStringLiteral("breakdown_s")).toObject();
  static const QStringList order{
      QStringLiteral("compute"),         QStringLiteral("exposed_tp_comm"),
      QStringLiteral("exposed_cp_comm"), QStringLiteral("exposed_pp_comm"),
      QStringLiteral("exposed_dp_comm"), QStringLiteral("bubble"),
      QStringLiteral("optimizer")};
  for (const QString& key : order)
    if (const auto value = numberOf(object.value(key))) parts.emplace_back(key, *value);
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (order.contains(it.key())) continue;
    if (const auto value = numberOf(it.value())) parts.emplace_back(it.key(), *value);
  }
  return parts;
}

std::optional<ResultData::Memory> ResultData::memory() const {
  const QJsonValue value = json.value(QStringLiteral("memory"));
  if (!value.isObject()) return std::nullopt;
  const QJsonObject object = value.toObject();
  Memory memory;
  memory.capacity_bytes = object.value(QStringLiteral("capacity_bytes")).toDouble();
  if (object.value(QStringLiteral("fits")).isBool()) memory.fits = object.value(QStringLiteral("fits")).toBool();
  for (const char* key : {"per_stage", "stages"}) {
    const QJsonValue stages = object.value(QLatin1String(key));
    if (!stages.isArray() || stages.toArray().isEmpty()) continue;
    double worst = -1;
    const QJsonArray array = stages.toArray();
    for (int i = 0; i < array.size(); ++i) {
      const QJsonObject stage = array.at(i).toObject();
      const int number = stage.contains(QStringLiteral("stage")) ? stage.value(QStringLiteral("stage")).toInt() : i;
      MemoryBar bar = barFrom(stage, QStringLiteral("stage %1").arg(number));
      if (bar.total() > worst) {
        worst = bar.total();
        memory.worst_index = i;
      }
      memory.bars.push_back(bar);
    }
    return memory;
  }
  const QJsonValue worst_stage = object.value(QStringLiteral("worst_stage"));
  MemoryBar bar = barFrom(object, worst_stage.isDouble()
                                      ? QStringLiteral("stage %1").arg(worst_stage.toInt())
                                      : QStringLiteral("worst stage"));
  if (bar.total() <= 0) return std::nullopt;
  memory.bars.push_back(bar);
  return memory;
}

bool parseResultJson(const QString& text, QJsonObject* object, QString* error) {
  QJsonParseError parse_error;
  const QJsonDocument document = QJsonDocument::fromJson(text.toUtf8(), &parse_error);
  if (parse_error.error != QJsonParseError::NoError || !document.isObject()) {
    if (error) {
      *error = parse_error.error != QJsonParseError::NoError
                   ? QStringLiteral("The result is not valid JSON: %1").arg(parse_error.errorString())
                   : QStringLiteral("The result is not a JSON object");
    }
    return false;
  }
  *object = document.object();
  return true;
}

}  // namespace tandem::gui
