//! Messages for the user: errors from any panel or job appear here as readable text, never as a
//! crash, and stay until dismissed.

use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

/// Shared by every panel (cloning shares the list).
#[derive(Clone, Default)]
pub struct Notices {
    list: Arc<Mutex<Vec<Notice>>>,
}

/// Notices kept; older ones are dropped so a job failing in a loop cannot grow the list forever.
const MAX_NOTICES: usize = 20;

impl Notices {
    fn push(&self, text: String, is_error: bool) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.push(Notice { text, is_error });
        let excess = list.len().saturating_sub(MAX_NOTICES);
        list.drain(..excess);
    }

    pub fn error(&self, text: impl Into<String>) {
        self.push(text.into(), true);
    }

    pub fn info(&self, text: impl Into<String>) {
        self.push(text.into(), false);
    }

    /// `text` parsed as a `T`, or `None` after an error naming `what`.
    pub fn parse<T: std::str::FromStr>(&self, what: &str, text: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        text.trim().parse().map_err(|err| self.error(format!("{what} {text:?}: {err}"))).ok()
    }

    pub fn all(&self) -> Vec<Notice> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The notices with a dismiss button each, errors with a button copying their text (to paste
    /// into a bug report); nothing when there are none.
    pub fn toasts_ui(&self, ui: &mut egui::Ui) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let mut dismissed = None;
        for (i, notice) in list.iter().enumerate() {
            ui.horizontal(|ui| {
                let color = if notice.is_error { ui.visuals().error_fg_color } else { ui.visuals().text_color() };
                if ui.small_button("x").on_hover_text("Dismiss").clicked() {
                    dismissed = Some(i);
                }
                if notice.is_error && ui.small_button("Copy").on_hover_text("Copy the message").clicked() {
                    ui.ctx().copy_text(notice.text.clone());
                }
                ui.colored_label(color, &notice.text);
            });
        }
        if let Some(i) = dismissed {
            list.remove(i);
        }
    }
}
