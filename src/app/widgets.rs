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

/// The head stage that scores faces: the model's last (the default), or stage 1 or 2 of a
/// cascade model, to see whether the cascade helps.
pub fn stage_choice_ui(ui: &mut egui::Ui, id: &str, value: &mut Option<usize>) -> egui::Response {
    let name = |stage: Option<usize>| stage.map_or_else(|| "last".to_string(), |s| format!("stage {s}"));
    egui::ComboBox::new(id, "Scoring stage")
        .selected_text(name(*value))
        .show_ui(ui, |ui| {
            for stage in [None, Some(1), Some(2)] {
                ui.selectable_value(value, stage, name(stage));
            }
        })
        .response
        .on_hover_text(
            "Which head stage scores the faces; stage 2 is the cascade's (a model without one has only stage 1)",
        )
}
