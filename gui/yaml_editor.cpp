#include "gui/yaml_editor.hpp"

#include <QFontDatabase>
#include <QLabel>
#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QSyntaxHighlighter>
#include <QTextBlock>
#include <QTimer>
#include <QVBoxLayout>

#include "gui/scenario_fields.hpp"

namespace tandem::gui {
namespace {

// Keys, comments and list dashes: enough colour to read a scenario at a glance.
class YamlHighlighter : public QSyntaxHighlighter {
 public:
  explicit YamlHighlighter(QTextDocument* document) : QSyntaxHighlighter(document) {
    key_.setForeground(QColor(0x1f, 0x5f, 0xa8));
    key_.setFontWeight(QFont::DemiBold);
    comment_.setForeground(QColor(0x75, 0x75, 0x75));
    comment_.setFontItalic(true);
  }

 protected:
  void highlightBlock(const QString& text) override {
    static const QRegularExpression key(QStringLiteral("^(\\s*-?\\s*)([A-Za-z0-9_.\\-]+)(?=\\s*:)"));
    static const QRegularExpression inline_key(QStringLiteral("[{,]\\s*([A-Za-z0-9_.\\-]+)(?=\\s*:)"));
    const auto match = key.match(text);
    if (match.hasMatch()) setFormat(match.capturedStart(2), match.capturedLength(2), key_);
    auto it = inline_key.globalMatch(text);
    while (it.hasNext()) {
      const auto inner = it.next();
      setFormat(inner.capturedStart(1), inner.capturedLength(1), key_);
    }
    // A comment starts at a '#' that is at the line start or after whitespace.
    for (int i = 0; i < text.size(); ++i) {
      if (text[i] == QLatin1Char('#') && (i == 0 || text[i - 1].isSpace())) {
        setFormat(i, static_cast<int>(text.size()) - i, comment_);
        break;
      }
    }
  }

 private:
  QTextCharFormat key_;
  QTextCharFormat comment_;
};

}  // namespace

YamlEditor::YamlEditor(ScenarioDocument* document, QWidget* parent)
    : QWidget(parent), document_(document) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  text_ = new QPlainTextEdit(this);
  text_->setObjectName(QStringLiteral("yamlText"));
  text_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  text_->setLineWrapMode(QPlainTextEdit::NoWrap);
  text_->setTabChangesFocus(false);
  text_->setPlaceholderText(QStringLiteral("name: my-scenario\nmodel: {preset: gpt3-1.3b}\ncluster: {gpu: a100-80gb, nodes: 1}\n..."));
  new YamlHighlighter(text_->document());
  layout->addWidget(text_, 1);
  status_ = new QLabel(this);
  status_->setObjectName(QStringLiteral("yamlStatus"));
  status_->setWordWrap(true);
  status_->setStyleSheet(QStringLiteral("color: #c62828; padding: 2px 4px;"));
  status_->setVisible(false);
  layout->addWidget(status_);

  pause_ = new QTimer(this);
  pause_->setSingleShot(true);
  pause_->setInterval(300);
  connect(pause_, &QTimer::timeout, this, &YamlEditor::flush);
  connect(text_, &QPlainTextEdit::textChanged, this, [this] {
    if (!updating_) pause_->start();
  });
  connect(document_, &ScenarioDocument::documentChanged, this, [this](ChangeOrigin origin) {
    if (origin != ChangeOrigin::Yaml) showDocumentText();
  });
  connect(document_, &ScenarioDocument::validated, this, &YamlEditor::markErrors);
  showDocumentText();
  markErrors();
}

void YamlEditor::flush() {
  pause_->stop();
  if (text_->toPlainText() != document_->yamlText()) document_->setYamlText(text_->toPlainText());
}

void YamlEditor::showDocumentText() {
  const QString text = document_->yamlText();
  if (text == text_->toPlainText()) return;
  updating_ = true;
  const int position = text_->textCursor().position();
  text_->setPlainText(text);
  QTextCursor cursor = text_->textCursor();
  cursor.setPosition(std::min(position, static_cast<int>(text.size())));
  text_->setTextCursor(cursor);
  updating_ = false;
}

void YamlEditor::markErrors() {
  QList<QTextEdit::ExtraSelection> selections;
  QStringList syntax;
  const auto& errors = document_->validation().errors;
  for (const auto& error : errors) {
    std::optional<int> line;
    if (error.path == "(yaml)") {
      syntax << QString::fromStdString(error.message());
      // "line 3, column 5"
      static const QRegularExpression where(QStringLiteral("line (\\d+)"));
      const auto match = where.match(QString::fromStdString(error.value));
      if (match.hasMatch()) line = match.captured(1).toInt() - 1;
    } else if (document_->yamlWellFormed()) {
      line = line_of(document_->document(), error.path);
    }
    if (!line) continue;
    const QTextBlock block = text_->document()->findBlockByNumber(*line);
    if (!block.isValid()) continue;
    QTextEdit::ExtraSelection selection;
    selection.cursor = QTextCursor(block);
    selection.cursor.movePosition(QTextCursor::EndOfBlock, QTextCursor::KeepAnchor);
    selection.format.setUnderlineStyle(QTextCharFormat::WaveUnderline);
    selection.format.setUnderlineColor(QColor(0xc6, 0x28, 0x28));
    selection.format.setToolTip(QString::fromStdString(error.message()));
    selections << selection;
  }
  text_->setExtraSelections(selections);
  status_->setText(syntax.join(QLatin1Char('\n')));
  status_->setVisible(!syntax.isEmpty());
}

void YamlEditor::goToPath(const QString& path) {
  std::optional<int> line;
  if (document_->yamlWellFormed()) line = line_of(document_->document(), path.toStdString());
  if (line) {
    const QTextBlock block = text_->document()->findBlockByNumber(*line);
    if (block.isValid()) {
      QTextCursor cursor(block);
      text_->setTextCursor(cursor);
      text_->centerCursor();
    }
  }
  text_->setFocus(Qt::OtherFocusReason);
}

}  // namespace tandem::gui
