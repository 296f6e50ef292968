//! Small widgets the panels share.

use crate::model::DeviceChoice;

/// A labelled one-line text field (paths, devices): the label names the field for screen
/// readers and UI tests.
pub fn text_field_ui(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        ui.add(egui::TextEdit::singleline(value).hint_text(hint)).labelled_by(label.id)
    })
    .inner
}

/// The one combo box: `choices` as `(value, name)`, the current one shown. Every choice list of
/// the studio (presets, schedules, filters, attributes, stages) goes through it.
pub fn choice_ui<T: PartialEq>(
    ui: &mut egui::Ui,
    combo: egui::ComboBox,
    value: &mut T,
    choices: impl IntoIterator<Item = (T, String)>,
) -> egui::Response {
    let choices: Vec<(T, String)> = choices.into_iter().collect();
    let selected = choices.iter().find(|(choice, _)| choice == value).map_or("", |(_, name)| name.as_str());
    let combo = combo.selected_text(selected.to_string());
    combo
        .show_ui(ui, |ui| {
            for (choice, name) in choices {
                ui.selectable_value(value, choice, name);
            }
        })
        .response
}

/// `names` as choices of a `String` field.
pub fn names(names: &[&str]) -> impl Iterator<Item = (String, String)> {
    names.iter().map(|n| (n.to_string(), n.to_string()))
}

/// `choices` plus a `none` entry, for optional choices ("any" filter value, a checkpoint's preset,
/// a loss setup other than the default).
pub fn with_none<T, C: IntoIterator<Item = (T, String)>>(
    none: &str,
    choices: C,
) -> impl Iterator<Item = (Option<T>, String)> + use<T, C> {
    std::iter::once((None, none.to_string())).chain(choices.into_iter().map(|(v, name)| (Some(v), name)))
}

/// `names` plus a "none" entry, as choices of an `Option<String>` field.
pub fn optional_names<'a>(none: &str, names: &'a [&str]) -> impl Iterator<Item = (Option<String>, String)> + 'a {
    with_none(none, self::names(names))
}

/// The head stage that scores faces: the model's last (the default), or stage 1 or 2 of a
/// cascade model, to see whether the cascade helps.
pub fn stage_choice_ui(ui: &mut egui::Ui, id: &str, value: &mut Option<usize>) -> egui::Response {
    let name = |stage: Option<usize>| stage.map_or_else(|| "last".to_string(), |s| format!("stage {s}"));
    let choices = [None, Some(1), Some(2)].map(|stage| (stage, name(stage)));
    choice_ui(ui, egui::ComboBox::new(id, "Scoring stage"), value, choices).on_hover_text(
        "Which head stage scores the faces; stage 2 is the cascade's (a model without one has only stage 1)",
    )
}

/// The devices to run a network on, as the device combo lists them: `auto` (naming what it would
/// pick), the CPU, then every wgpu adapter that can be opened ("name — Vulkan, discrete"; OpenGL
/// ones never are), and `current` when it is none of those (a typed `cuda:1`).
pub fn device_choices(current: DeviceChoice) -> Vec<(DeviceChoice, String)> {
    let mut choices = vec![
        (DeviceChoice::Auto, format!("Auto (best found: {})", DeviceChoice::Auto.describe())),
        (DeviceChoice::Cpu, "CPU".to_string()),
    ];
    for adapter in crate::model::adapters() {
        if let Some(choice) = adapter.choice {
            choices.push((choice, format!("{} ({}, {})", adapter.name, adapter.api.name(), adapter.kind.name())));
        }
    }
    if cfg!(feature = "cuda") {
        choices.push((DeviceChoice::Cuda(0), "CUDA device 0".to_string()));
    }
    if !choices.iter().any(|(choice, _)| *choice == current) {
        choices.push((current, current.to_string()));
    }
    choices
}

/// The device combo (the caller labels it: `.labelled_by(label.id)`); `id` keeps the combos of
/// several panels apart.
pub fn device_choice_ui(ui: &mut egui::Ui, id: &str, value: &mut DeviceChoice) -> egui::Response {
    let combo = egui::ComboBox::from_id_salt(id).width(220.0);
    let choices = device_choices(*value);
    choice_ui(ui, combo, value, choices)
        .on_hover_text("Where the network runs: Auto takes the best GPU wgpu finds, else the CPU")
}

/// Where a list's keys move its selection: Up/Down one row, PageUp/PageDown `page` rows,
/// Home/End the first and last (the keys are consumed). `None` when none was pressed, the list
/// is empty, or a text field has the keyboard.
pub fn list_keys(ctx: &egui::Context, len: usize, selected: Option<usize>, page: usize) -> Option<usize> {
    use egui::{Key, Modifiers};
    let last = len.checked_sub(1)?;
    if ctx.egui_wants_keyboard_input() {
        return None;
    }
    let pressed = |key: Key| ctx.input_mut(|i| i.consume_key(Modifiers::NONE, key));
    let at = selected.map(|s| s.min(last));
    let moved = |forward: bool, by: usize| match (at, forward) {
        (None, _) => 0,
        (Some(s), true) => (s + by).min(last),
        (Some(s), false) => s.saturating_sub(by),
    };
    if pressed(Key::ArrowDown) {
        Some(moved(true, 1))
    } else if pressed(Key::ArrowUp) {
        Some(moved(false, 1))
    } else if pressed(Key::PageDown) {
        Some(moved(true, page.max(1)))
    } else if pressed(Key::PageUp) {
        Some(moved(false, page.max(1)))
    } else if pressed(Key::Home) {
        Some(0)
    } else if pressed(Key::End) {
        Some(last)
    } else {
        None
    }
}

/// Row `index` of a list moved through with [`list_keys`]: highlighted when it is `shown`,
/// scrolled into view when the keys just moved to it (`keyed`). Whether it was clicked.
pub fn list_row_ui(
    ui: &mut egui::Ui,
    index: usize,
    shown: Option<usize>,
    keyed: Option<usize>,
    text: impl Into<egui::WidgetText>,
) -> bool {
    let row = ui.selectable_label(shown == Some(index), text);
    if keyed == Some(index) {
        row.scroll_to_me(None);
    }
    row.clicked()
}
