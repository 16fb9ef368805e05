#pragma once
// The timeline: a Gantt chart of a trace with one lane per rank and stream. Wheel zooms around
// the pointer, Shift+wheel scrolls the lanes, dragging pans, the scroll bars move in time and
// over lanes, +/-/0 zoom in, out and to fit. Hovering shows an op's details, clicking selects
// it. Painting walks only the visible window of each lane (binary search) and merges ops
// narrower than a pixel, so a frame costs about (lanes on screen × pixels), not the op count.

#include <cstdint>
#include <memory>
#include <optional>

#include <QAbstractScrollArea>

#include "gui/timeline_model.hpp"

namespace tandem::gui {

class TimelineView : public QAbstractScrollArea {
  Q_OBJECT

 public:
  explicit TimelineView(QWidget* parent = nullptr);

  void setRecords(std::shared_ptr<const std::vector<report::TraceRecord>> records);
  const TimelineModel& model() const { return model_; }

  void fitAll();
  // Zooms by `factor` (> 1 zooms in) keeping the time under viewport x fixed.
  void zoom(double factor, int anchor_x);
  void setVisibleRange(double start_s, double span_s);
  double visibleStart() const { return view_start_s_; }
  double visibleSpan() const { return view_span_s_; }

  // The op under a viewport position, if any (with a few pixels' tolerance).
  std::optional<std::uint32_t> opAt(const QPoint& viewport_position) const;
  // The viewport position of the middle of an op (for tests), nullopt when off screen.
  std::optional<QPoint> positionOf(std::uint32_t index) const;
  std::optional<std::uint32_t> selectedOp() const { return selected_; }
  void selectOp(std::optional<std::uint32_t> index);
  // Rectangles the last paint drew (ops and merged pixel runs): stays near lanes × width.
  std::size_t lastPaintedRectangles() const { return painted_rectangles_; }

  static constexpr int kLabelWidth = 170;
  static constexpr int kHeaderHeight = 24;
  static constexpr int kLaneHeight = 18;

 signals:
  void opSelected(std::optional<std::uint32_t> index);
  void visibleRangeChanged(double start_s, double span_s);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;
  void wheelEvent(QWheelEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mouseReleaseEvent(QMouseEvent* event) override;
  void mouseDoubleClickEvent(QMouseEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;
  void scrollContentsBy(int dx, int dy) override;
  bool viewportEvent(QEvent* event) override;

 private:
  double timeAt(double x) const;
  double xAt(double t) const;
  int plotWidth() const;
  int lanesTop() const;
  std::optional<std::size_t> laneAtY(int y) const;
  void updateScrollBars();
  void clampView();
  void paintAxis(class QPainter& painter, int width);

  TimelineModel model_;
  double view_start_s_ = 0;
  double view_span_s_ = 1;
  std::optional<std::uint32_t> hovered_;
  std::optional<std::uint32_t> selected_;
  QPoint press_position_;
  double press_start_s_ = 0;
  int press_scroll_y_ = 0;
  bool dragging_ = false;
  bool updating_scroll_bars_ = false;
  std::size_t painted_rectangles_ = 0;
};

}  // namespace tandem::gui
