#include "gui/summary_panel.hpp"

#include <QFormLayout>
#include <QJsonArray>
#include <QLabel>
#include <QVBoxLayout>

#include "gui/format.hpp"
#include "gui/result_data.hpp"

namespace tandem::gui {
namespace {

QString tflops(double value) { return QStringLiteral("%1 TFLOP/s").arg(value, 0, 'f', 1); }
QString perSecond(double value) { return formatCount(value) + QStringLiteral(" tokens/s"); }
QString plain(double value) { return formatNumber(value, 6); }
QString days(double value) { return QStringLiteral("%1 days").arg(value, 0, 'f', 1); }
QString hours(double value) { return formatCount(value) + QStringLiteral(" GPU-hours"); }

}  // namespace

SummaryPanel::SummaryPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  heading_ = new QLabel(this);
  heading_->setObjectName(QStringLiteral("summaryHeading"));
  heading_->setWordWrap(true);
  heading_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(heading_);
  auto* holder = new QWidget(this);
  form_ = new QFormLayout(holder);
  form_->setContentsMargins(0, 0, 0, 0);
  form_->setLabelAlignment(Qt::AlignRight);
  layout->addWidget(holder);
  layout->addStretch(1);
  clear(QStringLiteral("No result yet: run the scenario (Ctrl+R) or open a run from History."));
}

void SummaryPanel::clear(const QString& message) {
  while (form_->rowCount() > 0) form_->removeRow(0);
  heading_->setText(message);
}

void SummaryPanel::addRow(const QString& key, const QString& label, const QString& value,
                          const QString& tooltip) {
  auto* name = new QLabel(label);
  auto* shown = new QLabel(value);
  shown->setObjectName(QStringLiteral("summary:") + key);
  shown->setTextInteractionFlags(Qt::TextSelectableByMouse);
  shown->setTextFormat(Qt::RichText);
  QFont font = shown->font();
  font.setBold(true);
  shown->setFont(font);
  if (!tooltip.isEmpty()) {
    name->setToolTip(tooltip);
    shown->setToolTip(tooltip);
  }
  form_->addRow(name, shown);
}

QString SummaryPanel::valueText(const QString& key) const {
  auto* label = findChild<QLabel*>(QStringLiteral("summary:") + key);
  return label == nullptr ? QString() : label->text();
}

void SummaryPanel::showResult(const ResultData& result) {
  clear(QString());
  heading_->setText(QStringLiteral("<b>%1</b>").arg(result.title.toHtmlEscaped()));

  struct Field {
    const char* key;
    const char* label;
    QString (*format)(double);
    const char* tooltip;
  };
  static const Field fields[] = {
      {"step_time_s", "Step time", &formatDuration, "Time of one training step (one global batch)"},
      {"tokens_per_s", "Throughput", &perSecond, "Tokens trained per second over the whole cluster"},
      {"mfu", "MFU", &formatPercent,
       "Model FLOPs utilisation: model FLOPs per second over the peak of every GPU"},
      {"model_tflops_per_gpu", "Model TFLOP/s per GPU", &tflops,
       "Model FLOPs (72·B·l·s·h² family formula) per second per GPU, not counting recompute"},
      {"hardware_tflops_per_gpu", "Hardware TFLOP/s per GPU", &tflops,
       "FLOPs the GPUs actually execute per second, recompute included"},
      {"gpus", "GPUs", &plain, "GPUs in the cluster"},
      {"steps", "Steps", &plain, "Optimizer steps run"},
      {"final_val_loss", "Final validation loss", &plain, "Loss on held-out data at the end"},
      {"entropy_nats_per_token", "Corpus entropy", &plain,
       "Entropy rate of the synthetic corpus (nats/token): the loss a perfect model reaches"},
  };
  for (const Field& field : fields) {
    const QString key = QLatin1String(field.key);
    if (const auto value = result.number(key))
      addRow(key, QLatin1String(field.label), field.format(*value), QLatin1String(field.tooltip));
  }
  if (const auto memory = result.memory()) {
    const MemoryBar& worst = memory->bars.at(static_cast<std::size_t>(memory->worst_index));
    const double peak = result.number(QStringLiteral("memory.peak_bytes_per_gpu")).value_or(worst.total());
    QString text = formatBytes(peak);
    if (memory->capacity_bytes > 0) text += QStringLiteral(" of ") + formatBytes(memory->capacity_bytes);
    const bool fits = memory->fits.value_or(memory->capacity_bytes <= 0 || peak <= memory->capacity_bytes);
    text += fits ? QStringLiteral(" — <span style='color:#2e7d32'>fits</span>")
                 : QStringLiteral(" — <span style='color:#c62828'>does not fit</span>");
    addRow(QStringLiteral("memory"), QStringLiteral("Peak memory per GPU"), text,
           QStringLiteral("The worst pipeline stage's peak against the GPU's capacity"));
  }
  // Time to train (simrun, when training.tokens is given).
  if (const auto value = result.number(QStringLiteral("days")))
    addRow(QStringLiteral("days"), QStringLiteral("Time to train"), days(*value),
           QStringLiteral("Days to train on training.tokens at this step time"));
  if (const auto value = result.number(QStringLiteral("gpu_hours")))
    addRow(QStringLiteral("gpu_hours"), QStringLiteral("GPU time"), hours(*value),
           QStringLiteral("GPU-hours to train on training.tokens"));
  const QJsonArray losses = result.json.value(QStringLiteral("losses")).toArray();
  if (!losses.isEmpty())
    addRow(QStringLiteral("final_loss"), QStringLiteral("Final training loss"),
           formatNumber(losses.last().toDouble(), 5));
  if (form_->rowCount() == 0)
    heading_->setText(heading_->text() + QStringLiteral("<br>The result has none of the usual fields; see All fields."));
}

}  // namespace tandem::gui
