// The timeline (gui/timeline_model.hpp, gui/timeline_view.hpp) on a synthetic trace of 60,000
// ops: lanes per rank and stream, hit testing against a brute-force search, zoom that keeps the
// time under the pointer, painting that stays bounded by the pixels rather than the ops, hover
// and click selection through real mouse events, and export as PNG and SVG. Also CSV export.
#include <algorithm>
#include <random>

#include <QElapsedTimer>
#include <QFile>
#include <QImage>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTemporaryDir>

#include "gui/export.hpp"
#include "gui/timeline_model.hpp"
#include "gui/timeline_view.hpp"
#include "test_support.hpp"

using namespace tandem;
using namespace tandem::gui;

namespace {

constexpr int kRanks = 4;
constexpr int kOpsPerLane = 5000;
const strategy::Stream kStreams[] = {strategy::Stream::Compute, strategy::Stream::TpComm, strategy::Stream::DpComm};

// Sequential ops per lane with gaps, durations 1..100 us from a seeded generator.
std::shared_ptr<std::vector<report::TraceRecord>> syntheticTrace() {
  auto records = std::make_shared<std::vector<report::TraceRecord>>();
  std::mt19937 random(1234);
  std::uniform_real_distribution<double> duration(1e-6, 100e-6);
  std::uniform_real_distribution<double> gap(0, 20e-6);
  for (int rank = 0; rank < kRanks; ++rank) {
    for (strategy::Stream stream : kStreams) {
      double t = 0;
      for (int k = 0; k < kOpsPerLane; ++k) {
        report::TraceRecord record;
        record.rank = rank;
        record.rank_class = rank;
        record.stream = stream;
        record.op_id = static_cast<std::uint32_t>(k);
        record.code = stream == strategy::Stream::Compute ? strategy::OpCode::QkvForward : strategy::OpCode::TpMlpOutputForward;
        record.phase = strategy::Phase::Forward;
        record.flops = 1e9;
        record.bytes = 1e6;
        t += gap(random);
        record.start_s = t;
        t += duration(random);
        record.end_s = t;
        records->push_back(record);
      }
    }
  }
  // Markers are not drawn.
  report::TraceRecord begin;
  begin.code = strategy::OpCode::StepBegin;
  records->push_back(begin);
  // Shuffle: the model must not rely on the input order.
  std::shuffle(records->begin(), records->end(), random);
  return records;
}

}  // namespace

class TimelineTest : public QObject {
  Q_OBJECT

 private:
  std::shared_ptr<std::vector<report::TraceRecord>> records_ = syntheticTrace();

 private slots:
  void modelPutsEveryOpInItsLane() {
    const TimelineModel model(records_);
    QCOMPARE(model.lanes().size(), static_cast<std::size_t>(kRanks * 3));
    QCOMPARE(model.opCount(), static_cast<std::size_t>(kRanks * 3 * kOpsPerLane));
    for (const TimelineLane& lane : model.lanes()) {
      QCOMPARE(lane.ops.size(), static_cast<std::size_t>(kOpsPerLane));
      for (std::size_t k = 1; k < lane.ops.size(); ++k)
        QVERIFY(model.record(lane.ops[k - 1]).start_s <= model.record(lane.ops[k]).start_s);
      for (std::uint32_t index : lane.ops) {
        QCOMPARE(model.record(index).rank, lane.rank);
        QVERIFY(model.record(index).stream == lane.stream);
      }
    }
    // Lanes by rank, then stream.
    QCOMPARE(model.lanes().front().rank, 0);
    QCOMPARE(model.lanes().back().rank, kRanks - 1);
  }

  void hitTestingMatchesABruteForceSearch() {
    const TimelineModel model(records_);
    std::mt19937 random(99);
    std::uniform_real_distribution<double> time(model.beginS(), model.endS());
    for (std::size_t lane = 0; lane < model.lanes().size(); ++lane) {
      for (int probe = 0; probe < 300; ++probe) {
        const double t = time(random);
        std::optional<std::uint32_t> expected;
        for (std::uint32_t index : model.lanes()[lane].ops) {
          const auto& record = model.record(index);
          if (record.start_s <= t && t <= record.end_s) expected = index;
        }
        QCOMPARE(model.opAt(lane, t, 0), expected);
      }
    }
    // Within a tolerance the nearest op is found, beyond it none.
    const TimelineLane& lane = model.lanes().front();
    const auto& first = model.record(lane.ops[0]);
    QCOMPARE(model.opAt(0, first.start_s - 1e-9, 2e-9), std::optional<std::uint32_t>(lane.ops[0]));
  }

  void paintingIsBoundedByPixelsNotOps() {
    TimelineView view;
    view.resize(1000, 400);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.setRecords(records_);
    QElapsedTimer clock;
    clock.start();
    view.viewport()->grab();
    const qint64 full_ms = clock.elapsed();
    const std::size_t plot_width = static_cast<std::size_t>(view.viewport()->width() - TimelineView::kLabelWidth);
    const std::size_t lanes = view.model().lanes().size();
    // 5,000 ops per lane on ~830 pixels: merged into at most about one rectangle per pixel.
    QVERIFY2(view.lastPaintedRectangles() <= lanes * (plot_width + 2),
             qPrintable(QStringLiteral("%1 rectangles").arg(view.lastPaintedRectangles())));
    QVERIFY(view.lastPaintedRectangles() >= lanes);
    const std::size_t full_rectangles = view.lastPaintedRectangles();
    // Zoomed in on 0.1 % of the step: only the ops in view are drawn.
    view.setVisibleRange(view.model().beginS() + 0.5 * (view.model().endS() - view.model().beginS()),
                         0.001 * (view.model().endS() - view.model().beginS()));
    view.viewport()->grab();
    QVERIFY(view.lastPaintedRectangles() < lanes * 20);
    qInfo("full view of %zu ops painted in %lld ms (%zu rectangles)", view.model().opCount(),
          static_cast<long long>(full_ms), full_rectangles);
  }

  void mergedOpsKeepTheirColours() {
    // 2,000 contiguous forward ops, then 2,000 backward ones, each far narrower than a pixel:
    // zoomed out, the first half of the lane is the forward colour and the second the backward.
    auto records = std::make_shared<std::vector<report::TraceRecord>>();
    for (int k = 0; k < 4000; ++k) {
      report::TraceRecord record;
      record.op_id = static_cast<std::uint32_t>(k);
      record.code = k < 2000 ? strategy::OpCode::QkvForward : strategy::OpCode::QkvBackwardInput;
      record.phase = k < 2000 ? strategy::Phase::Forward : strategy::Phase::BackwardInput;
      record.start_s = k * 1e-6;
      record.end_s = (k + 1) * 1e-6;
      records->push_back(record);
    }
    TimelineView view;
    view.resize(1000, 200);
    view.show();
    view.setRecords(records);
    const QImage image = view.viewport()->grab().toImage();
    const int y = TimelineView::kHeaderHeight + TimelineView::kLaneHeight / 2;
    const int plot = view.viewport()->width() - TimelineView::kLabelWidth;
    const QColor first = image.pixelColor(TimelineView::kLabelWidth + plot / 4, y);
    const QColor second = image.pixelColor(TimelineView::kLabelWidth + 3 * plot / 4, y);
    QCOMPARE(first, QColor(0x42, 0x85, 0xf4));   // forward
    QCOMPARE(second, QColor(0xf4, 0x51, 0x1e));  // backward (input)
    QVERIFY(view.lastPaintedRectangles() <= 4);
  }

  void zoomKeepsTheTimeUnderThePointer() {
    TimelineView view;
    view.resize(1000, 400);
    view.show();
    view.setRecords(records_);
    const int x = 600;
    const double plot = view.viewport()->width() - TimelineView::kLabelWidth;
    auto timeAt = [&](int px) { return view.visibleStart() + (px - TimelineView::kLabelWidth) * view.visibleSpan() / plot; };
    const double before = timeAt(x);
    const double span = view.visibleSpan();
    view.zoom(8, x);
    QCOMPARE(view.visibleSpan(), span / 8);
    QVERIFY(std::abs(timeAt(x) - before) <= 1e-9 * span);
    // Wheel events zoom too; the pointer's time stays put.
    const double before_wheel = timeAt(x);
    QWheelEvent wheel(QPointF(x, 100), view.viewport()->mapToGlobal(QPointF(x, 100)), QPoint(), QPoint(0, 120),
                      Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
    QApplication::sendEvent(view.viewport(), &wheel);
    QVERIFY(view.visibleSpan() < span / 8);
    QVERIFY(std::abs(timeAt(x) - before_wheel) <= 1e-9 * span);
    // Fit shows everything; zooming out never goes past it.
    view.zoom(1e-6, x);
    QCOMPARE(view.visibleSpan(), view.model().endS() - view.model().beginS());
  }

  void hoverAndClickSelectAnOp() {
    TimelineView view;
    view.resize(1000, 400);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.setRecords(records_);
    const TimelineModel& model = view.model();
    const std::uint32_t target = model.lanes()[4].ops[2500];
    const auto& record = model.record(target);
    // Zoom so the op is about 100 pixels wide.
    const double duration = record.end_s - record.start_s;
    view.setVisibleRange(record.start_s - 4 * duration, 9 * duration);
    const auto position = view.positionOf(target);
    QVERIFY(position.has_value());
    QCOMPARE(view.opAt(*position), std::optional<std::uint32_t>(target));
    QSignalSpy selected(&view, &TimelineView::opSelected);
    QTest::mouseMove(view.viewport(), *position);
    QTest::mouseClick(view.viewport(), Qt::LeftButton, Qt::NoModifier, *position);
    QCOMPARE(view.selectedOp(), std::optional<std::uint32_t>(target));
    QVERIFY(selected.count() >= 1);
    // Clicking the lane labels clears the selection.
    QTest::mouseClick(view.viewport(), Qt::LeftButton, Qt::NoModifier, QPoint(10, position->y()));
    QVERIFY(!view.selectedOp());
    // The details name the op.
    const std::string details = op_details(record);
    QVERIFY(details.find("qkv-fwd") != std::string::npos || details.find("tp-mlp") != std::string::npos);
    QVERIFY(details.find("rank " + std::to_string(record.rank)) != std::string::npos);
  }

  void exportsPngAndSvg() {
    QTemporaryDir scratch;
    TimelineView view;
    view.resize(900, 300);
    view.show();
    view.setRecords(records_);
    QString error;
    const QString png = scratch.filePath(QStringLiteral("timeline.png"));
    QVERIFY2(exportImage(&view, png, &error), qPrintable(error));
    const QImage image(png);
    QCOMPARE(image.size(), QSize(1800, 600));  // rendered at twice the widget's size
    const QString svg = scratch.filePath(QStringLiteral("timeline.svg"));
    QVERIFY2(exportImage(&view, svg, &error), qPrintable(error));
    QFile file(svg);
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QByteArray text = file.readAll();
    QVERIFY(text.contains("<svg"));
    QVERIFY(text.contains("rank 0"));
  }

  void tablesExportAsRfc4180Csv() {
    QStandardItemModel model(2, 2);
    model.setHorizontalHeaderLabels({QStringLiteral("key"), QStringLiteral("value, with comma")});
    model.setItem(0, 0, new QStandardItem(QStringLiteral("plain")));
    model.setItem(0, 1, new QStandardItem(QStringLiteral("say \"hi\"")));
    auto* exact = new QStandardItem(QStringLiteral("3.83 s"));
    exact->setData(3.8312, Qt::UserRole);  // the exact value wins over the display text
    model.setItem(1, 0, new QStandardItem(QStringLiteral("step")));
    model.setItem(1, 1, exact);
    QCOMPARE(modelToCsv(model),
             QStringLiteral("key,\"value, with comma\"\r\nplain,\"say \"\"hi\"\"\"\r\nstep,3.8312\r\n"));
  }
};

TANDEM_GUI_TEST_MAIN(TimelineTest)
#include "test_timeline.moc"
