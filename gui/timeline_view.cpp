#include "gui/timeline_view.hpp"

#include <algorithm>
#include <cmath>

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollBar>
#include <QToolTip>
#include <QWheelEvent>

#include "gui/format.hpp"

namespace tandem::gui {
namespace {

constexpr int kScrollUnits = 1'000'000;
constexpr double kMinimumSpanS = 1e-9;

QColor colorFor(const report::TraceRecord& record) {
  using strategy::Phase;
  using strategy::Stream;
  switch (record.stream) {
    case Stream::TpComm: return QColor(0x8e, 0x24, 0xaa);
    case Stream::CpComm: return QColor(0xd8, 0x1b, 0x60);
    case Stream::DpComm: return QColor(0x00, 0x89, 0x7b);
    case Stream::PpComm: return QColor(0x8d, 0x6e, 0x63);
    case Stream::Compute: break;
  }
  switch (record.phase) {
    case Phase::Forward: return QColor(0x42, 0x85, 0xf4);
    case Phase::BackwardInput: return QColor(0xf4, 0x51, 0x1e);
    case Phase::BackwardWeight: return QColor(0xfb, 0x8c, 0x00);
    case Phase::Optimizer: return QColor(0x34, 0xa8, 0x53);
    case Phase::None: break;
  }
  return QColor(0x75, 0x75, 0x75);
}

// 1, 2 or 5 times a power of ten, at least `raw`.
double niceStep(double raw) {
  if (raw <= 0) return 1;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double multiple : {1.0, 2.0, 5.0, 10.0})
    if (multiple * power >= raw) return multiple * power;
  return 10 * power;
}

}  // namespace

TimelineView::TimelineView(QWidget* parent) : QAbstractScrollArea(parent) {
  setObjectName(QStringLiteral("timeline"));
  viewport()->setMouseTracking(true);
  viewport()->setAttribute(Qt::WA_OpaquePaintEvent);
  setFocusPolicy(Qt::StrongFocus);
  setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOn);
  setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
  setMinimumSize(400, 160);
  setToolTip(QString());
  viewport()->setToolTip(QString());
}

void TimelineView::setRecords(std::shared_ptr<const std::vector<report::TraceRecord>> records) {
  model_ = TimelineModel(std::move(records));
  hovered_.reset();
  selected_.reset();
  verticalScrollBar()->setValue(0);
  fitAll();
  emit opSelected(std::nullopt);
}

int TimelineView::plotWidth() const { return std::max(1, viewport()->width() - kLabelWidth); }
int TimelineView::lanesTop() const { return kHeaderHeight - verticalScrollBar()->value(); }

double TimelineView::timeAt(double x) const {
  return view_start_s_ + (x - kLabelWidth) * view_span_s_ / plotWidth();
}

double TimelineView::xAt(double t) const {
  return kLabelWidth + (t - view_start_s_) * plotWidth() / view_span_s_;
}

std::optional<std::size_t> TimelineView::laneAtY(int y) const {
  if (y < kHeaderHeight) return std::nullopt;
  const int offset = y - lanesTop();
  if (offset < 0) return std::nullopt;
  const auto lane = static_cast<std::size_t>(offset / kLaneHeight);
  if (lane >= model_.lanes().size()) return std::nullopt;
  return lane;
}

void TimelineView::fitAll() {
  const double total = model_.endS() - model_.beginS();
  view_start_s_ = model_.beginS();
  view_span_s_ = total > 0 ? total : 1e-6;
  updateScrollBars();
  viewport()->update();
  emit visibleRangeChanged(view_start_s_, view_span_s_);
}

void TimelineView::clampView() {
  const double total = model_.endS() - model_.beginS();
  if (total <= 0) return;
  view_span_s_ = std::clamp(view_span_s_, kMinimumSpanS, total);
  view_start_s_ = std::clamp(view_start_s_, model_.beginS(), model_.endS() - view_span_s_);
}

void TimelineView::setVisibleRange(double start_s, double span_s) {
  view_start_s_ = start_s;
  view_span_s_ = span_s;
  clampView();
  updateScrollBars();
  viewport()->update();
  emit visibleRangeChanged(view_start_s_, view_span_s_);
}

void TimelineView::zoom(double factor, int anchor_x) {
  if (factor <= 0) return;
  const double anchor = timeAt(std::clamp(anchor_x, kLabelWidth, kLabelWidth + plotWidth()));
  const double fraction = (anchor - view_start_s_) / view_span_s_;
  const double span = view_span_s_ / factor;
  setVisibleRange(anchor - fraction * span, span);
}

void TimelineView::updateScrollBars() {
  updating_scroll_bars_ = true;
  const double total = model_.endS() - model_.beginS();
  QScrollBar* horizontal = horizontalScrollBar();
  if (total > 0) {
    const int page = std::max(1, static_cast<int>(std::lround(kScrollUnits * view_span_s_ / total)));
    horizontal->setRange(0, std::max(0, kScrollUnits - page));
    horizontal->setPageStep(page);
    horizontal->setSingleStep(std::max(1, page / 10));
    horizontal->setValue(static_cast<int>(std::lround(kScrollUnits * (view_start_s_ - model_.beginS()) / total)));
  } else {
    horizontal->setRange(0, 0);
  }
  QScrollBar* vertical = verticalScrollBar();
  const int lanes_height = static_cast<int>(model_.lanes().size()) * kLaneHeight;
  const int visible = std::max(0, viewport()->height() - kHeaderHeight);
  vertical->setRange(0, std::max(0, lanes_height - visible));
  vertical->setPageStep(std::max(1, visible));
  vertical->setSingleStep(kLaneHeight);
  updating_scroll_bars_ = false;
}

void TimelineView::scrollContentsBy(int, int) {
  if (!updating_scroll_bars_) {
    const double total = model_.endS() - model_.beginS();
    if (total > 0) {
      view_start_s_ = model_.beginS() + total * horizontalScrollBar()->value() / kScrollUnits;
      clampView();
      emit visibleRangeChanged(view_start_s_, view_span_s_);
    }
  }
  viewport()->update();
}

void TimelineView::resizeEvent(QResizeEvent* event) {
  QAbstractScrollArea::resizeEvent(event);
  updateScrollBars();
}

void TimelineView::paintAxis(QPainter& painter, int width) {
  const QPalette& colors = palette();
  painter.fillRect(QRect(0, 0, width, kHeaderHeight), colors.window());
  painter.setPen(colors.color(QPalette::Mid));
  painter.drawLine(0, kHeaderHeight - 1, width, kHeaderHeight - 1);
  const double step = niceStep(view_span_s_ / std::max(1.0, plotWidth() / 110.0));
  const double first = std::ceil((view_start_s_ - model_.beginS()) / step) * step + model_.beginS();
  painter.setPen(colors.color(QPalette::WindowText));
  for (double t = first; t <= view_start_s_ + view_span_s_ + step * 1e-9; t += step) {
    const int x = static_cast<int>(std::lround(xAt(t)));
    painter.drawLine(x, kHeaderHeight - 6, x, kHeaderHeight - 1);
    painter.drawText(QRect(x + 3, 0, 100, kHeaderHeight - 4), Qt::AlignLeft | Qt::AlignVCenter,
                     formatDuration(t - model_.beginS()));
  }
  painter.fillRect(QRect(0, 0, kLabelWidth, kHeaderHeight), colors.window());
  painter.drawText(QRect(6, 0, kLabelWidth - 8, kHeaderHeight - 2), Qt::AlignLeft | Qt::AlignVCenter,
                   QStringLiteral("rank · stream"));
}

void TimelineView::paintEvent(QPaintEvent*) {
  QPainter painter(viewport());
  const QRect area = viewport()->rect();
  const QPalette& colors = palette();
  painter.fillRect(area, colors.base());
  painted_rectangles_ = 0;
  if (model_.empty()) {
    painter.setPen(colors.color(QPalette::PlaceholderText));
    painter.drawText(area, Qt::AlignCenter,
                     QStringLiteral("No trace to show. Run a scenario, or open a run with a stored trace from History."));
    return;
  }
  const int width = area.width();
  const int height = area.height();
  const auto& lanes = model_.lanes();
  const int top = lanesTop();
  const std::size_t first_lane = static_cast<std::size_t>(std::max(0, (kHeaderHeight - top) / kLaneHeight));
  const std::size_t last_lane = std::min(lanes.size(), static_cast<std::size_t>((height - top) / kLaneHeight + 1));
  const double t0 = view_start_s_;
  const double t1 = view_start_s_ + view_span_s_;
  const QRect plot(kLabelWidth, kHeaderHeight, width - kLabelWidth, height - kHeaderHeight);

  // Grid lines at the axis ticks.
  painter.setClipRect(plot);
  {
    const double step = niceStep(view_span_s_ / std::max(1.0, plotWidth() / 110.0));
    const double first = std::ceil((t0 - model_.beginS()) / step) * step + model_.beginS();
    painter.setPen(QColor(0, 0, 0, 18));
    for (double t = first; t <= t1; t += step) {
      const int x = static_cast<int>(std::lround(xAt(t)));
      painter.drawLine(x, kHeaderHeight, x, height);
    }
  }

  const QFontMetrics metrics = painter.fontMetrics();
  for (std::size_t lane_number = first_lane; lane_number < last_lane; ++lane_number) {
    const TimelineLane& lane = lanes[lane_number];
    const int y = top + static_cast<int>(lane_number) * kLaneHeight;
    if (lane.rank % 2 == 1) painter.fillRect(QRect(kLabelWidth, y, width, kLaneHeight), QColor(0, 0, 0, 10));
    const double bar_top = y + 2;
    const double bar_height = kLaneHeight - 4;

    bool pending = false;
    double pending_x0 = 0;
    double pending_x1 = 0;
    QColor pending_color;
    auto flush = [&] {
      if (!pending) return;
      painter.fillRect(QRectF(pending_x0, bar_top, pending_x1 - pending_x0, bar_height), pending_color);
      ++painted_rectangles_;
      pending = false;
    };

    std::size_t k = model_.firstEndingAtOrAfter(lane, t0);
    const std::size_t count = lane.ops.size();
    while (k < count) {
      const report::TraceRecord& record = model_.record(lane.ops[k]);
      if (record.start_s > t1) break;
      const double x0 = std::max(xAt(record.start_s), static_cast<double>(kLabelWidth) - 1);
      const double x1 = std::min(xAt(record.end_s), static_cast<double>(width) + 1);
      if (x1 - x0 >= 2.0) {
        flush();
        const QColor color = colorFor(record);
        const QRectF box(x0, bar_top, x1 - x0, bar_height);
        painter.fillRect(box, color);
        ++painted_rectangles_;
        if (x1 - x0 >= 6) {
          painter.setPen(color.darker(140));
          painter.drawRect(box.adjusted(0, 0, -0.5, -0.5));
        }
        if (x1 - x0 > 40) {
          painter.setPen(Qt::white);
          const QString label = metrics.elidedText(QString::fromStdString(op_label(record)),
                                                   Qt::ElideRight, static_cast<int>(x1 - x0) - 6);
          painter.drawText(box.adjusted(3, 0, -3, 0), Qt::AlignLeft | Qt::AlignVCenter, label);
        }
        ++k;
        continue;
      }
      // Narrower than two pixels: merge into a run of touching pixels of one colour. An op of
      // another colour starts a new run at the next pixel not painted yet; one that starts
      // inside a pixel already painted only extends the run (a pixel shows one colour).
      const double pixel = std::floor(x0);
      const QColor color = colorFor(record);
      if (pending && ((color == pending_color && pixel <= pending_x1) || pixel < std::floor(pending_x1))) {
        pending_x1 = std::max(pending_x1, std::max(x1, pixel + 1));
      } else {
        flush();
        pending = true;
        pending_x0 = pixel;
        pending_x1 = std::max(x1, pixel + 1);
        pending_color = color;
      }
      // Ops that start inside the run so far and end within a pixel of it need no drawing of
      // their own: skip them by binary search (the running maximum of ends says how far they
      // reach).
      const std::size_t next = model_.firstStartingAfter(lane, timeAt(std::floor(pending_x1)));
      if (next > k + 1) {
        const double reach = xAt(lane.max_end_s[next - 1]);
        if (reach - pending_x1 < 1.0) {
          pending_x1 = std::max(pending_x1, std::min(reach, static_cast<double>(width)));
          k = next;
          continue;
        }
      }
      ++k;
    }
    flush();
  }

  // Hovered and selected ops on top.
  auto outline = [&](std::uint32_t index, const QColor& color, qreal pen_width) {
    const auto lane = model_.laneOf(index);
    if (!lane) return;
    const report::TraceRecord& record = model_.record(index);
    const double x0 = xAt(record.start_s);
    const double x1 = std::max(xAt(record.end_s), x0 + 3);
    const int y = top + static_cast<int>(*lane) * kLaneHeight;
    painter.setPen(QPen(color, pen_width));
    painter.setBrush(Qt::NoBrush);
    painter.drawRect(QRectF(x0 - 1, y + 1, x1 - x0 + 2, kLaneHeight - 2));
  };
  if (hovered_ && hovered_ != selected_) outline(*hovered_, QColor(0, 0, 0, 120), 1);
  if (selected_) outline(*selected_, QColor(0, 0, 0), 2);
  painter.setClipping(false);

  // Lane labels.
  painter.fillRect(QRect(0, kHeaderHeight, kLabelWidth, height - kHeaderHeight), colors.window());
  painter.setClipRect(QRect(0, kHeaderHeight, kLabelWidth, height - kHeaderHeight));
  for (std::size_t lane_number = first_lane; lane_number < last_lane; ++lane_number) {
    const TimelineLane& lane = lanes[lane_number];
    const int y = top + static_cast<int>(lane_number) * kLaneHeight;
    const bool first_of_rank = lane_number == 0 || lanes[lane_number - 1].rank != lane.rank;
    if (first_of_rank) {
      painter.setPen(colors.color(QPalette::Mid));
      painter.drawLine(0, y, width, y);
    }
    painter.setPen(colors.color(QPalette::WindowText));
    QString text = QStringLiteral("%1 · %2")
                       .arg(first_of_rank ? QStringLiteral("rank %1").arg(lane.rank) : QString(),
                            QString::fromUtf8(strategy::to_string(lane.stream).data(),
                                              static_cast<int>(strategy::to_string(lane.stream).size())));
    if (first_of_rank && lane.rank_class != lane.rank) text += QStringLiteral(" (class %1)").arg(lane.rank_class);
    painter.drawText(QRect(6, y, kLabelWidth - 10, kLaneHeight), Qt::AlignLeft | Qt::AlignVCenter,
                     metrics.elidedText(text, Qt::ElideRight, kLabelWidth - 10));
  }
  painter.setClipping(false);
  painter.setPen(colors.color(QPalette::Mid));
  painter.drawLine(kLabelWidth - 1, kHeaderHeight, kLabelWidth - 1, height);
  paintAxis(painter, width);
}

std::optional<std::uint32_t> TimelineView::opAt(const QPoint& position) const {
  if (position.x() < kLabelWidth) return std::nullopt;
  const auto lane = laneAtY(position.y());
  if (!lane) return std::nullopt;
  const double seconds_per_pixel = view_span_s_ / plotWidth();
  return model_.opAt(*lane, timeAt(position.x()), 3 * seconds_per_pixel);
}

std::optional<QPoint> TimelineView::positionOf(std::uint32_t index) const {
  const auto lane = model_.laneOf(index);
  if (!lane) return std::nullopt;
  const report::TraceRecord& record = model_.record(index);
  const double start = std::max(record.start_s, view_start_s_);
  const double end = std::min(record.end_s, view_start_s_ + view_span_s_);
  if (end < start) return std::nullopt;
  const int x = static_cast<int>(std::lround(xAt((start + end) / 2)));
  const int y = lanesTop() + static_cast<int>(*lane) * kLaneHeight + kLaneHeight / 2;
  if (y < kHeaderHeight || y >= viewport()->height()) return std::nullopt;
  return QPoint(x, y);
}

void TimelineView::selectOp(std::optional<std::uint32_t> index) {
  if (selected_ == index) return;
  selected_ = index;
  viewport()->update();
  emit opSelected(selected_);
}

void TimelineView::wheelEvent(QWheelEvent* event) {
  const QPoint angle = event->angleDelta();
  if (event->modifiers() & Qt::ShiftModifier) {
    const int delta = angle.y() != 0 ? angle.y() : angle.x();
    verticalScrollBar()->setValue(verticalScrollBar()->value() - delta / 120 * kLaneHeight * 3);
  } else if (angle.x() != 0 && std::abs(angle.x()) > std::abs(angle.y())) {
    setVisibleRange(view_start_s_ - angle.x() / 120.0 * 0.1 * view_span_s_, view_span_s_);
  } else if (angle.y() != 0) {
    zoom(std::pow(1.0015, angle.y()), static_cast<int>(event->position().x()));
  }
  event->accept();
}

void TimelineView::mousePressEvent(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton) return;
  press_position_ = event->position().toPoint();
  press_start_s_ = view_start_s_;
  press_scroll_y_ = verticalScrollBar()->value();
  dragging_ = false;
}

void TimelineView::mouseMoveEvent(QMouseEvent* event) {
  const QPoint position = event->position().toPoint();
  if (event->buttons() & Qt::LeftButton) {
    const QPoint moved = position - press_position_;
    if (!dragging_ && moved.manhattanLength() > 3) {
      dragging_ = true;
      viewport()->setCursor(Qt::ClosedHandCursor);
    }
    if (dragging_) {
      setVisibleRange(press_start_s_ - moved.x() * view_span_s_ / plotWidth(), view_span_s_);
      verticalScrollBar()->setValue(press_scroll_y_ - moved.y());
    }
    return;
  }
  const auto op = opAt(position);
  if (op != hovered_) {
    hovered_ = op;
    viewport()->update();
  }
  if (op) {
    QToolTip::showText(event->globalPosition().toPoint(),
                       QString::fromStdString(op_details(model_.record(*op))), viewport());
  } else {
    QToolTip::hideText();
  }
}

void TimelineView::mouseReleaseEvent(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton) return;
  if (dragging_) {
    dragging_ = false;
    viewport()->unsetCursor();
    return;
  }
  selectOp(opAt(event->position().toPoint()));
}

void TimelineView::mouseDoubleClickEvent(QMouseEvent* event) {
  const auto op = opAt(event->position().toPoint());
  if (!op) {
    fitAll();
    return;
  }
  // Zoom to the op with its neighbourhood: ten times its duration.
  const report::TraceRecord& record = model_.record(*op);
  const double duration = std::max(record.end_s - record.start_s, kMinimumSpanS * 100);
  setVisibleRange(record.start_s - 4.5 * duration, 10 * duration);
}

void TimelineView::keyPressEvent(QKeyEvent* event) {
  const int middle = kLabelWidth + plotWidth() / 2;
  switch (event->key()) {
    case Qt::Key_Plus:
    case Qt::Key_Equal: zoom(1.5, middle); break;
    case Qt::Key_Minus: zoom(1 / 1.5, middle); break;
    case Qt::Key_0:
    case Qt::Key_Home: fitAll(); break;
    case Qt::Key_Left: setVisibleRange(view_start_s_ - 0.1 * view_span_s_, view_span_s_); break;
    case Qt::Key_Right: setVisibleRange(view_start_s_ + 0.1 * view_span_s_, view_span_s_); break;
    case Qt::Key_Escape: selectOp(std::nullopt); break;
    default: QAbstractScrollArea::keyPressEvent(event); return;
  }
  event->accept();
}

bool TimelineView::viewportEvent(QEvent* event) {
  if (event->type() == QEvent::Leave && hovered_) {
    hovered_.reset();
    viewport()->update();
  }
  return QAbstractScrollArea::viewportEvent(event);
}

}  // namespace tandem::gui
