//! What the Evaluate panel shows beyond the AP table: the operating points (a table per setting,
//! marked on the PR curves, and the point of the error browser's score threshold), AP by face
//! size and attribute, and the landmark accuracy with its CED curve. [`EvalDetails`] is computed
//! with the evaluation, in its background job; drawing it reads it only.

use egui::{Align2, Color32, RichText};
use egui_plot::{Corner, Legend, Line, LineStyle, MarkerShape, Plot, PlotPoint, Points, Text};

use super::eval_compare::run_color;
use crate::eval::{EvalDetails, EvalReport, FAILURE_ERROR, LandmarkAccuracy, OperatingPoint};

/// The line under the score-threshold slider.
pub fn current_point_text(point: &OperatingPoint) -> String {
    format!(
        "current point: confidence {:.3}, precision {:.3}, recall {:.3}, F1 {:.3}",
        point.threshold, point.precision, point.recall, point.f1
    )
}

/// One colour per setting (the curve and its points), in the report's order.
const SETTING_COLORS: [Color32; 6] = [
    Color32::from_rgb(66, 135, 245),
    Color32::from_rgb(245, 140, 40),
    Color32::from_rgb(60, 180, 75),
    Color32::from_rgb(220, 60, 60),
    Color32::from_rgb(150, 100, 210),
    Color32::from_rgb(140, 90, 70),
];

fn setting_color(index: usize) -> Color32 {
    SETTING_COLORS[index % SETTING_COLORS.len()]
}

/// The PR curves as lines (never aggregated into bands: a curve's points are dense in recall),
/// each setting's operating points on its curve (the best-F1 point a larger diamond), those of
/// `selected` labelled with their confidence, and `current` (the score threshold's point on the
/// `selected` curve) as a cross. `compared` (`(name, report)` of the runs compared with this one,
/// in the order of `eval_compare::compared_runs`) adds each one's `selected` curve, dashed, in its
/// run colour, named in the legend.
pub fn pr_curves_ui(
    ui: &mut egui::Ui,
    report: &EvalReport,
    details: &EvalDetails,
    selected: &str,
    current: Option<OperatingPoint>,
    compared: &[(&str, &EvalReport)],
    size: egui::Vec2,
) {
    let current_color = ui.visuals().strong_text_color();
    let at = |p: &OperatingPoint| [p.recall, p.precision];
    Plot::new("pr-curves")
        .width(size.x)
        .height(size.y)
        .legend(Legend::default().position(Corner::LeftBottom))
        .x_axis_label("recall")
        .y_axis_label("precision")
        .include_x(0.0)
        .include_x(1.0)
        .include_y(0.0)
        .include_y(1.0)
        .show(ui, |plot| {
            for (i, s) in report.settings.iter().enumerate() {
                let color = setting_color(i);
                let curve: Vec<[f64; 2]> = s.curve.iter().map(|p| [p.recall, p.precision]).collect();
                plot.line(Line::new(format!("{} (AP {:.3})", s.name, s.ap), curve).color(color).allow_band(false));
                // A confidence above every prediction recalls nothing: no point on the curve.
                let points = details.operating_points(&s.name);
                let shown: Vec<(usize, &OperatingPoint)> =
                    points.iter().enumerate().filter(|(_, p)| p.recall > 0.0).collect();
                let fixed: Vec<[f64; 2]> = shown.iter().filter(|(_, p)| !p.best_f1).map(|&(_, p)| at(p)).collect();
                plot.points(
                    Points::new("operating points", fixed)
                        .id(("operating-points", i))
                        .color(color)
                        .shape(MarkerShape::Circle)
                        .radius(3.5),
                );
                let best: Vec<[f64; 2]> = shown.iter().filter(|(_, p)| p.best_f1).map(|&(_, p)| at(p)).collect();
                plot.points(
                    Points::new("best F1 point", best)
                        .id(("best-f1-point", i))
                        .color(color)
                        .shape(MarkerShape::Diamond)
                        .radius(7.0),
                );
                if s.name != selected {
                    continue;
                }
                for &(k, p) in &shown {
                    let text = if p.best_f1 {
                        format!("best F1 {:.3} at {:.3}", p.f1, p.threshold)
                    } else {
                        format!("{:.2}", p.threshold)
                    };
                    let position = PlotPoint::new(p.recall, p.precision);
                    let label = Text::new("", position, text).id(("operating-point-label", i, k));
                    plot.text(label.anchor(Align2::LEFT_BOTTOM).color(color));
                }
                if let Some(p) = current {
                    plot.points(
                        Points::new("at the score threshold", vec![at(&p)])
                            .id("score-threshold-point")
                            .color(current_color)
                            .shape(MarkerShape::Cross)
                            .radius(8.0),
                    );
                }
            }
            for (k, &(name, other)) in compared.iter().enumerate() {
                let Some(s) = other.setting(selected) else { continue };
                let curve: Vec<[f64; 2]> = s.curve.iter().map(|p| [p.recall, p.precision]).collect();
                let line = Line::new(format!("{name}: {} (AP {:.3})", s.name, s.ap), curve)
                    .id(("compared-curve", k))
                    .color(run_color(k))
                    .style(LineStyle::dashed_loose())
                    .allow_band(false);
                plot.line(line);
            }
        });
}

/// Per setting, a table of its operating points (confidence, precision, recall, F1), the best-F1
/// row marked.
pub fn operating_points_ui(ui: &mut egui::Ui, details: &EvalDetails) {
    for (setting, points) in &details.operating_points {
        egui::CollapsingHeader::new(format!("Operating points: {setting}"))
            .id_salt(("operating-points", setting))
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new(("operating-points-grid", setting)).striped(true).num_columns(5).show(ui, |ui| {
                    for header in ["confidence", "precision", "recall", "F1", ""] {
                        ui.strong(header);
                    }
                    ui.end_row();
                    for p in points {
                        let cell = |v: f64| {
                            let text = RichText::new(format!("{v:.3}"));
                            if p.best_f1 { text.strong() } else { text }
                        };
                        ui.label(cell(p.threshold));
                        ui.label(cell(p.precision));
                        ui.label(cell(p.recall));
                        ui.label(cell(p.f1));
                        if p.best_f1 {
                            ui.label(RichText::new("best F1").strong())
                                .on_hover_text("The confidence of the highest F1 over the curve");
                        } else {
                            ui.label("");
                        }
                        ui.end_row();
                    }
                });
            });
    }
}

/// Per setting, collapsed at first: AP per size bucket (COCO's small < 32², medium, large ≥ 96²)
/// and per attribute value where the ground truth has attributes.
pub fn breakdown_ui(ui: &mut egui::Ui, details: &EvalDetails) {
    let mut settings: Vec<&str> = Vec::new();
    for b in &details.buckets {
        if !settings.contains(&b.setting.as_str()) {
            settings.push(&b.setting);
        }
    }
    for setting in settings {
        egui::CollapsingHeader::new(format!("AP by size and attribute: {setting}"))
            .id_salt(("breakdown", setting))
            .default_open(false)
            .show(ui, |ui| {
                egui::Grid::new(("breakdown-grid", setting)).striped(true).num_columns(4).show(ui, |ui| {
                    for header in ["by", "bucket", "AP", "faces"] {
                        ui.strong(header);
                    }
                    ui.end_row();
                    let mut group = "";
                    for b in details.buckets.iter().filter(|b| b.setting == setting) {
                        // The group's name on its first row only.
                        ui.label(if b.group == group { "" } else { b.group.as_str() });
                        group = b.group.as_str();
                        ui.label(&b.bucket);
                        ui.label(if b.faces > 0 { format!("{:.3}", b.ap) } else { "-".to_string() });
                        ui.label(b.faces.to_string());
                        ui.end_row();
                    }
                });
            });
    }
}

/// The five points in the order of the annotation and the detector.
const POINT_NAMES: [&str; 5] = ["left eye", "right eye", "nose", "mouth left", "mouth right"];

/// NME, failure rate, faces scored and the error per point, and the CED curve; or why there is
/// none.
pub fn landmarks_ui(ui: &mut egui::Ui, details: &EvalDetails) {
    egui::CollapsingHeader::new("Landmark accuracy").id_salt("landmarks").default_open(true).show(ui, |ui| {
        let Some(accuracy) = &details.landmarks else {
            ui.weak(
                "No face could be scored: the ground truth or the predictions have no landmarks \
                 (prediction folders and the official .mat have none)",
            );
            return;
        };
        egui::Grid::new("landmark-grid").striped(true).num_columns(2).show(ui, |ui| {
            ui.label("NME");
            ui.label(format!("{:.4}", accuracy.nme));
            ui.end_row();
            ui.label(format!("failure rate (error > {FAILURE_ERROR})"));
            ui.label(format!("{:.1} %", 100.0 * accuracy.failure_rate));
            ui.end_row();
            ui.label("faces scored");
            ui.label(accuracy.faces.to_string());
            ui.end_row();
            for (name, error) in POINT_NAMES.iter().zip(accuracy.per_point) {
                ui.label(*name);
                ui.label(format!("{error:.4}"));
                ui.end_row();
            }
        });
        ced_plot_ui(ui, accuracy);
    });
}

/// The cumulative error distribution: fraction of faces with an error at most x.
fn ced_plot_ui(ui: &mut egui::Ui, accuracy: &LandmarkAccuracy) {
    Plot::new("landmark-ced")
        .height(130.0)
        .x_axis_label("normalised error")
        .y_axis_label("faces")
        .include_x(0.0)
        .include_y(0.0)
        .include_y(1.0)
        .allow_scroll(false)
        .allow_zoom(false)
        .allow_drag(false)
        .show(ui, |plot| {
            plot.line(Line::new("CED", accuracy.ced.clone()).allow_band(false));
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_point_reads_as_one_line() {
        let point = OperatingPoint { threshold: 0.5, precision: 0.8, recall: 0.8, f1: 0.8, best_f1: false };
        assert_eq!(
            current_point_text(&point),
            "current point: confidence 0.500, precision 0.800, recall 0.800, F1 0.800"
        );
    }
}
