//! Small widgets the panels share.

/// A labelled one-line text field (paths, devices): the label names the field for screen
/// readers and UI tests.
pub fn text_field(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        ui.add(egui::TextEdit::singleline(value).hint_text(hint)).labelled_by(label.id)
    })
    .inner
}
