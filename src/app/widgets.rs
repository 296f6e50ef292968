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

/// A combo box of `names` plus a "none" entry, for optional choices (a checkpoint's preset, a
/// loss setup other than the model's own).
pub fn optional_choice(
    ui: &mut egui::Ui,
    combo: egui::ComboBox,
    value: &mut Option<String>,
    none: &str,
    names: &[&str],
) -> egui::Response {
    combo
        .selected_text(value.as_deref().unwrap_or(none))
        .show_ui(ui, |ui| {
            ui.selectable_value(value, None, none);
            for name in names {
                ui.selectable_value(value, Some(name.to_string()), *name);
            }
        })
        .response
}
