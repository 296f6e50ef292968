//! The Train panel's charts and the side list beside them. Loss terms are grouped per run: each
//! term keeps one colour across runs and each run one line style, and the side list has a
//! checkbox per run and per term (a plot legend of 7 terms × N runs covered the plot). Losses can
//! be smoothed as TensorBoard smooths them and drawn on a log axis; hovering names the step, its
//! epoch and the value. The AP chart marks each run's best epoch with the checkpoint that holds
//! it, and the side list shows each run's config.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use egui::Color32;
use egui_plot::{
    AxisHints, HoverPosition, Legend, Line, LineStyle, MarkerShape, Plot, PlotPoint, PlotPoints, Points, Text,
};

use crate::train::{RunCurves, RunFolder, Series};

/// Points drawn per series; longer series are thinned so a long run stays cheap to draw.
pub const MAX_PLOT_POINTS: usize = 1500;

/// The smoothing slider's top: the moving average then spans about 100 steps.
pub const MAX_SMOOTHING: f64 = 0.99;

/// How the charts draw: smoothing, the log axis, and which loss series are switched off (kept
/// between runs of the studio, with its other settings).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ChartSettings {
    /// TensorBoard's smoothing weight (0: the values as logged).
    pub smoothing: f64,
    /// Losses on a log10 axis.
    pub log_scale: bool,
    /// `(run folder, term)` of the loss series switched off.
    hidden: BTreeSet<(PathBuf, String)>,
}

impl ChartSettings {
    pub fn is_shown(&self, run: &Path, term: &str) -> bool {
        !self.hidden.contains(&(run.to_path_buf(), term.to_string()))
    }

    pub fn set_shown(&mut self, run: &Path, term: &str, shown: bool) {
        let key = (run.to_path_buf(), term.to_string());
        if shown {
            self.hidden.remove(&key);
        } else {
            self.hidden.insert(key);
        }
    }
}

/// A run's best validation: the epoch with the highest AP and the checkpoint holding its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct BestEpoch {
    pub epoch: u32,
    pub ap: f64,
    /// `checkpoint-<step>/model.bpk` of that epoch's validation, while the run folder still has it
    /// (the trainer keeps only its last checkpoint).
    pub checkpoint: Option<PathBuf>,
}

impl BestEpoch {
    /// "best: epoch 3, AP 0.612", and the checkpoint's path when there is one.
    pub fn text(&self) -> String {
        let best = format!("best: epoch {}, AP {:.3}", self.epoch, self.ap);
        match &self.checkpoint {
            Some(path) => format!("{best} — {}", path.display()),
            None => best,
        }
    }
}

/// A run on the charts.
pub struct ChartRun<'a> {
    /// Its folder: what tells its series from another run's of the same name.
    pub dir: &'a Path,
    pub name: String,
    pub curves: &'a RunCurves,
    /// Its `config.json` as rows, when it could be read.
    pub config: Option<&'a [(String, String)]>,
    pub best: Option<BestEpoch>,
}

impl<'a> ChartRun<'a> {
    pub fn new(dir: &'a Path, name: String, curves: &'a RunCurves, config: Option<&'a [(String, String)]>) -> Self {
        let best = main_ap_series(&curves.ap).and_then(best_epoch).map(|(epoch, ap)| BestEpoch {
            epoch,
            ap,
            checkpoint: curves
                .val_steps
                .get(&epoch)
                .map(|&step| RunFolder::new(dir).checkpoint_model_path(step))
                .filter(|path| path.is_file()),
        });
        ChartRun { dir, name, curves, config, best }
    }
}

/// A loss series as the chart draws it.
#[derive(Clone, Debug, PartialEq)]
pub struct LossLine {
    pub run: PathBuf,
    /// Which of the shown runs it belongs to (its line style).
    pub run_index: usize,
    pub term: String,
    /// Smoothed (when smoothing is on), as log10 on the log axis (non-positive values left
    /// out), thinned.
    pub points: Vec<[f64; 2]>,
    /// The values as logged, in the same plot space, drawn faintly behind a smoothed line;
    /// empty without smoothing.
    pub raw: Vec<[f64; 2]>,
}

/// The loss series of `runs` that `settings` shows, as they are drawn.
pub fn loss_lines(runs: &[ChartRun<'_>], settings: &ChartSettings) -> Vec<LossLine> {
    let plotted = |points: &[[f64; 2]]| {
        let points = if settings.log_scale { Cow::Owned(log10_points(points)) } else { Cow::Borrowed(points) };
        thin(&points)
    };
    let smoothing = settings.smoothing > 0.0;
    let mut lines = Vec::new();
    for (run_index, run) in runs.iter().enumerate() {
        for (term, points) in run.curves.losses.iter().filter(|(term, _)| settings.is_shown(run.dir, term)) {
            let (points, raw) = if smoothing {
                (plotted(&smooth(points, settings.smoothing)), plotted(points))
            } else {
                (plotted(points), Vec::new())
            };
            lines.push(LossLine { run: run.dir.to_path_buf(), run_index, term: term.clone(), points, raw });
        }
    }
    lines
}

/// TensorBoard's smoothing: an exponential moving average, debiased so the first points are not
/// pulled towards 0: `last = last·w + (1 − w)·v`, `smoothed = last / (1 − wⁿ)` with `n` the
/// finite values seen so far. As in TensorBoard, non-finite values pass through, and so does a
/// constant series.
pub fn smooth(points: &[[f64; 2]], weight: f64) -> Vec<[f64; 2]> {
    let constant = points.windows(2).all(|w| w[0][1] == w[1][1]);
    let mut last = 0.0;
    // wⁿ, kept as a running product: a long run's every frame would otherwise pay a power a point.
    let mut weight_n = 1.0;
    points
        .iter()
        .map(|&[x, value]| {
            if constant || !value.is_finite() {
                return [x, value];
            }
            last = last * weight + (1.0 - weight) * value;
            weight_n *= weight;
            let debias = if weight == 1.0 { 1.0 } else { 1.0 - weight_n };
            [x, last / debias]
        })
        .collect()
}

/// `[x, log10 y]` of the points with a positive `y` (a log axis has no place for the others).
fn log10_points(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    points.iter().filter(|p| p[1] > 0.0).map(|&[x, y]| [x, y.log10()]).collect()
}

/// At most `MAX_PLOT_POINTS` points, evenly spaced, always keeping the last one.
pub fn thin(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    if points.len() <= MAX_PLOT_POINTS {
        return points.to_vec();
    }
    let step = points.len().div_ceil(MAX_PLOT_POINTS);
    let mut kept: Vec<[f64; 2]> = points.iter().step_by(step).copied().collect();
    if let Some(last) = points.last()
        && kept.last() != Some(last)
    {
        kept.push(*last);
    }
    kept
}

/// The AP series a run's best epoch is read from: the detector's own (the last cascade stage),
/// on WIDER's headline setting (Hard), else the whole split ("all"), else the first setting.
pub fn main_ap_series(ap: &Series) -> Option<&[[f64; 2]]> {
    let rank = |name: &str| {
        let (setting, stage) = match name.rsplit_once(" · stage ") {
            Some((setting, n)) => (setting, n.parse::<u32>().unwrap_or(0)),
            None => (name, 0),
        };
        let preference = match setting {
            "hard" => 0,
            "all" => 1,
            _ => 2,
        };
        (Reverse(stage), preference)
    };
    ap.iter().min_by_key(|(name, _)| rank(name)).map(|(_, points)| points.as_slice())
}

/// The epoch of the highest AP in `points` (`[epoch, AP]`) and that AP; the earliest of equal
/// APs, a non-finite AP never.
pub fn best_epoch(points: &[[f64; 2]]) -> Option<(u32, f64)> {
    let mut best: Option<[f64; 2]> = None;
    for point in points.iter().filter(|p| p[1].is_finite()) {
        if best.is_none_or(|b| point[1] > b[1]) {
            best = Some(*point);
        }
    }
    best.map(|[epoch, ap]| (epoch as u32, ap))
}

/// A `config.json` as `key: value` rows in the file's order, nested objects flattened into
/// dotted keys (`optimizer.momentum`).
pub fn config_rows(config: &serde_json::Value) -> Vec<(String, String)> {
    fn flatten(key: String, value: &serde_json::Value, rows: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(fields) => {
                for (name, inner) in fields {
                    flatten(if key.is_empty() { name.clone() } else { format!("{key}.{name}") }, inner, rows);
                }
            }
            serde_json::Value::String(text) => rows.push((key, text.clone())),
            serde_json::Value::Null => rows.push((key, "—".into())),
            other => rows.push((key, other.to_string())),
        }
    }
    let mut rows = Vec::new();
    flatten(String::new(), config, &mut rows);
    rows
}

/// The run folder's config as rows, when it can be read.
pub fn read_config_rows(dir: &Path) -> Option<Vec<(String, String)>> {
    let text = crate::fsutil::read_text_limited(&RunFolder::new(dir).config_path(), 1 << 20).ok()?;
    serde_json::from_str(&text).ok().map(|value| config_rows(&value))
}

/// A value with three significant digits, trailing zeros dropped (`0.0316`, `2.5`, `123`);
/// scientific far from 1.
pub fn format_value(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor();
    if !(-3.0..5.0).contains(&magnitude) {
        return format!("{value:.2e}");
    }
    let decimals = (2.0 - magnitude).max(0.0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// What hovering the loss chart shows: the series, the step and its epoch, and the value (back
/// from the log axis). `series`: the hovered line's name and its run's curves.
pub fn hover_text(series: Option<(&str, &RunCurves)>, x: f64, y: f64, log_scale: bool) -> String {
    let value = format_value(if log_scale { 10f64.powf(y) } else { y });
    let step = x.round().max(0.0) as u64;
    match series {
        Some((name, curves)) => {
            let epoch = curves.epoch_at(step).map_or_else(String::new, |e| format!(", epoch {e}"));
            format!("{name}\nstep {step}{epoch}\nloss {value}")
        }
        None => format!("step {step}\nloss {value}"),
    }
}

/// Tableau's ten colours: one per loss term, the same in every run.
const TERM_COLORS: [Color32; 10] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(23, 190, 207),
];

/// One line style per shown run, with its name for the side list.
const RUN_STYLES: [(LineStyle, &str); 4] = [
    (LineStyle::Solid, "solid lines"),
    (LineStyle::Dashed { length: 10.0 }, "dashed lines"),
    (LineStyle::Dotted { spacing: 6.0 }, "dotted lines"),
    (LineStyle::Dashed { length: 4.0 }, "short dashes"),
];

/// Every loss term of the shown runs, sorted: a term's colour is its place here.
fn term_names(runs: &[ChartRun<'_>]) -> Vec<String> {
    let names: BTreeSet<&String> = runs.iter().flat_map(|r| r.curves.losses.keys()).collect();
    names.into_iter().cloned().collect()
}

fn term_color(terms: &[String], term: &str) -> Color32 {
    TERM_COLORS[terms.iter().position(|t| t == term).unwrap_or(0) % TERM_COLORS.len()]
}

/// The side list: smoothing and the log axis, then per run a collapsible group with a checkbox
/// for the run and one per loss term (in the term's colour), its best epoch and its config.
pub fn side_list_ui(ui: &mut egui::Ui, runs: &[ChartRun<'_>], settings: &mut ChartSettings) {
    ui.heading("Curves");
    ui.add(egui::Slider::new(&mut settings.smoothing, 0.0..=MAX_SMOOTHING).text("Smoothing")).on_hover_text(
        "TensorBoard's smoothing of the losses: a debiased moving average, 0 draws the values as logged.",
    );
    ui.checkbox(&mut settings.log_scale, "Log scale")
        .on_hover_text("Draw the losses on a log10 axis, leaving out values that are not positive.");
    let terms = term_names(runs);
    for (index, run) in runs.iter().enumerate() {
        ui.separator();
        let id = ui.make_persistent_id(("train-chart-run", run.dir));
        egui::collapsing_header::CollapsingState::load_with_default_open(ui.ctx(), id, true)
            .show_header(ui, |ui| {
                let losses = &run.curves.losses;
                let shown = losses.keys().filter(|term| settings.is_shown(run.dir, term)).count();
                let mut all = shown > 0 && shown == losses.len();
                let mixed = shown > 0 && !all;
                let group = egui::Checkbox::new(&mut all, run.name.as_str()).indeterminate(mixed);
                if ui.add(group).on_hover_text("Show or hide all of this run's loss terms").changed() {
                    for term in losses.keys() {
                        settings.set_shown(run.dir, term, all);
                    }
                }
                if runs.len() > 1 {
                    ui.weak(RUN_STYLES[index % RUN_STYLES.len()].1);
                }
            })
            .body(|ui| {
                ui.horizontal_wrapped(|ui| {
                    for term in run.curves.losses.keys() {
                        let mut shown = settings.is_shown(run.dir, term);
                        let text = egui::RichText::new(term).color(term_color(&terms, term));
                        if ui.checkbox(&mut shown, text).changed() {
                            settings.set_shown(run.dir, term, shown);
                        }
                    }
                });
                if let Some(best) = &run.best {
                    ui.label(best.text());
                }
                if let Some(rows) = run.config {
                    egui::CollapsingHeader::new("Config").id_salt(("train-run-config", run.dir)).show(ui, |ui| {
                        egui::Grid::new(("train-run-config-grid", run.dir)).striped(true).show(ui, |ui| {
                            for (key, value) in rows {
                                ui.label(key);
                                ui.label(value);
                                ui.end_row();
                            }
                        });
                    });
                }
            });
    }
}

/// The four charts: the loss terms, validation AP with each run's best epoch, the learning rate
/// and images/s.
pub fn charts_ui(ui: &mut egui::Ui, runs: &[ChartRun<'_>], settings: &ChartSettings) {
    let prefix = runs.len() > 1;
    let name =
        |run: &ChartRun<'_>, series: &str| if prefix { format!("{}: {series}", run.name) } else { series.to_string() };
    let height = (ui.available_height() / 2.0 - 30.0).max(120.0);
    ui.columns(2, |columns| {
        columns[0].label("Loss terms per stage (by step)");
        loss_chart_ui(&mut columns[0], height, runs, settings);
        columns[1].label("Validation AP (by epoch)");
        Plot::new("ap").height(height).legend(Legend::default()).show(&mut columns[1], |plot| {
            plot.set_plot_bounds_y(0.0..=1.0);
            for run in runs {
                for (series, points) in &run.curves.ap {
                    plot.line(Line::new(name(run, series), PlotPoints::new(thin(points))));
                }
                if let Some(best) = &run.best {
                    let at = [f64::from(best.epoch), best.ap];
                    plot.points(Points::new("", vec![at]).shape(MarkerShape::Diamond).radius(6.0).filled(true));
                    let label = name(run, &format!("best: epoch {}, AP {:.3}", best.epoch, best.ap));
                    // Towards the middle of the chart: at the last epoch a label to the right is cut.
                    let last = run.curves.ap.iter().flat_map(|(_, p)| p.last()).map(|p| p[0]).fold(at[0], f64::max);
                    let first = run.curves.ap.iter().flat_map(|(_, p)| p.first()).map(|p| p[0]).fold(at[0], f64::min);
                    let anchor = if at[0] > (first + last) / 2.0 {
                        egui::Align2::RIGHT_BOTTOM
                    } else {
                        egui::Align2::LEFT_BOTTOM
                    };
                    plot.text(Text::new("", PlotPoint::new(at[0], at[1]), label).anchor(anchor));
                }
            }
        });
        columns[0].label("Learning rate (by step)");
        step_plot("lr", height).legend(Legend::default()).show(&mut columns[0], |plot| {
            for run in runs {
                plot.line(Line::new(name(run, "lr"), PlotPoints::new(thin(&run.curves.lr))));
            }
        });
        columns[1].label("Images/s (by step)");
        step_plot("speed", height).legend(Legend::default()).show(&mut columns[1], |plot| {
            for run in runs {
                plot.line(Line::new(name(run, "images/s"), PlotPoints::new(thin(&run.curves.images_per_s))));
            }
        });
    });
}

/// A chart over training steps. egui_plot hides x labels closer than 60 px, which beside the
/// side list leaves a step axis with "0" alone; step numbers are narrow enough for 36.
fn step_plot(id: &str, height: f32) -> Plot<'static> {
    Plot::new(id).height(height).custom_x_axes(vec![AxisHints::new_x().label_spacing(36.0..=50.0)])
}

/// The losses: no legend over the plot (the side list is it), hover labels with the step's
/// epoch, the log axis labelled with the values themselves.
fn loss_chart_ui(ui: &mut egui::Ui, height: f32, runs: &[ChartRun<'_>], settings: &ChartSettings) {
    let terms = term_names(runs);
    let lines = loss_lines(runs, settings);
    let names: Vec<String> = lines.iter().map(|l| format!("{}: {}", runs[l.run_index].name, l.term)).collect();
    let curves: Vec<&RunCurves> = lines.iter().map(|l| runs[l.run_index].curves).collect();
    let log_scale = settings.log_scale;
    let mut plot = step_plot("loss", height).label_formatter(|position| {
        Some(match position {
            HoverPosition::NearDataPoint { plot_name, position, .. } => {
                let series = names.iter().position(|n| n == plot_name).map(|i| (names[i].as_str(), curves[i]));
                hover_text(series, position.x, position.y, log_scale)
            }
            HoverPosition::Elsewhere { position } => hover_text(None, position.x, position.y, log_scale),
        })
    });
    if log_scale {
        plot = plot.y_axis_formatter(|mark, _| format_value(10f64.powf(mark.value)));
    }
    plot.show(ui, |plot| {
        for (line, name) in lines.iter().zip(&names) {
            let color = term_color(&terms, &line.term);
            let style = RUN_STYLES[line.run_index % RUN_STYLES.len()].0;
            if !line.raw.is_empty() {
                let raw = Line::new("", PlotPoints::new(line.raw.clone())).id(("raw", name.as_str()));
                plot.line(raw.color(color.gamma_multiply(0.3)).style(style).allow_hover(false));
            }
            let width = if line.term == "total" { 2.0 } else { 1.2 };
            plot.line(
                Line::new(name.clone(), PlotPoints::new(line.points.clone())).color(color).style(style).width(width),
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{StageTerms, TrainEvent};

    fn close(a: &[[f64; 2]], b: &[[f64; 2]]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p[0] == q[0] && (p[1] - q[1]).abs() < 1e-12)
    }

    #[test]
    fn smoothing_is_tensorboards_debiased_moving_average() {
        let points = [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        // w = 0.5: last = 0.5, 1.25, 2.125; debias = 0.5, 0.75, 0.875.
        assert!(close(&smooth(&points, 0.5), &[[1.0, 1.0], [2.0, 1.25 / 0.75], [3.0, 2.125 / 0.875]]));
        assert!(close(&smooth(&points, 0.0), &points), "weight 0: the values as logged");
        let with_nan = smooth(&[[1.0, 4.0], [2.0, f64::NAN], [3.0, 2.0]], 0.5);
        assert!(with_nan[1][1].is_nan(), "a non-finite value passes through");
        // last = 2, then 2·0.5 + 0.5·2 = 2 over the second finite value's debias, 1 − 0.5².
        assert!((with_nan[2][1] - 2.0 / 0.75).abs() < 1e-12, "and is not counted: {with_nan:?}");
        assert_eq!(smooth(&[[1.0, 3.0], [2.0, 3.0]], 0.9), [[1.0, 3.0], [2.0, 3.0]], "a constant series stays");
    }

    #[test]
    fn long_series_are_thinned_keeping_the_last_point() {
        let points: Vec<[f64; 2]> = (0..10_001).map(|i| [i as f64, 0.0]).collect();
        let thinned = thin(&points);
        assert!(thinned.len() <= MAX_PLOT_POINTS + 1);
        assert_eq!(thinned.last().unwrap()[0], 10_000.0);
    }

    fn curves() -> RunCurves {
        let mut curves = RunCurves::default();
        for (step, epoch, loss) in [(1, 1, 4.0), (2, 1, 2.0), (3, 2, 1.0), (4, 2, 0.0)] {
            curves.push(&TrainEvent::Step {
                step,
                epoch,
                loss,
                stages: vec![StageTerms { classification: 1.0, boxes: 2.0, landmarks: 0.5 }],
                lr: 0.01,
                images_per_s: 10.0,
                eta_s: 1.0,
            });
        }
        curves
    }

    #[test]
    fn loss_lines_leave_out_hidden_terms_and_draw_the_log_axis() {
        let curves = curves();
        let dir = Path::new("runs/a");
        let runs = [ChartRun::new(dir, "a".into(), &curves, None)];
        let mut settings = ChartSettings::default();
        assert_eq!(loss_lines(&runs, &settings).len(), 4, "total and three terms of one stage");
        settings.set_shown(dir, "s1 boxes", false);
        let terms: Vec<String> = loss_lines(&runs, &settings).into_iter().map(|l| l.term).collect();
        assert_eq!(terms, ["s1 classification", "s1 landmarks", "total"]);
        settings.log_scale = true;
        let total = loss_lines(&runs, &settings).into_iter().find(|l| l.term == "total").unwrap();
        assert!(close(&total.points, &[[1.0, 4f64.log10()], [2.0, 2f64.log10()], [3.0, 0.0]]), "0 left out");
        assert!(total.raw.is_empty(), "no faint raw line without smoothing");
        settings.smoothing = 0.5;
        let total = loss_lines(&runs, &settings).into_iter().find(|l| l.term == "total").unwrap();
        assert_eq!(total.raw.len(), 3, "the logged values behind the smoothed line");
        // last = 2, then 2·0.5 + 0.5·2 = 2, debiased by 1 − 0.5².
        assert!((total.points[1][1] - (2.0f64 / 0.75).log10()).abs() < 1e-12, "smoothed, then log10");
    }

    #[test]
    fn the_best_epoch_is_the_highest_ap_the_earliest_of_equals() {
        assert_eq!(best_epoch(&[[1.0, 0.4], [2.0, 0.6], [3.0, 0.6], [4.0, 0.5]]), Some((2, 0.6)));
        assert_eq!(best_epoch(&[[1.0, f64::NAN], [2.0, 0.1]]), Some((2, 0.1)), "NaN never wins");
        assert_eq!(best_epoch(&[]), None);
        let mut ap = Series::new();
        ap.insert("all · stage 1".into(), vec![[1.0, 0.9]]);
        ap.insert("all · stage 2".into(), vec![[1.0, 0.5]]);
        assert_eq!(main_ap_series(&ap), Some(&[[1.0, 0.5]][..]), "the detector's own stage, the last");
        ap.clear();
        ap.insert("all".into(), vec![[1.0, 0.3]]);
        assert_eq!(main_ap_series(&ap), Some(&[[1.0, 0.3]][..]));
        ap.clear();
        for (setting, value) in [("easy", 0.9), ("hard", 0.4), ("medium", 0.8)] {
            ap.insert(format!("{setting} · stage 2"), vec![[1.0, value]]);
            ap.insert(format!("{setting} · stage 1"), vec![[1.0, 0.1]]);
        }
        assert_eq!(main_ap_series(&ap), Some(&[[1.0, 0.4]][..]), "WIDER's Hard of the last stage");
    }

    #[test]
    fn the_best_epoch_names_its_checkpoint_while_the_folder_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut curves = RunCurves::default();
        for (epoch, step, ap) in [(1, 10, 0.4), (2, 20, 0.6), (3, 30, 0.5)] {
            curves.push(&TrainEvent::Val { epoch, step, ap: vec![("all".into(), ap)], stages: Vec::new() });
        }
        let best = ChartRun::new(dir.path(), "a".into(), &curves, None).best.unwrap();
        assert_eq!((best.epoch, best.ap, best.checkpoint.as_ref()), (2, 0.6, None), "no checkpoint left");
        assert_eq!(best.text(), "best: epoch 2, AP 0.600");
        let model = RunFolder::new(dir.path()).checkpoint_model_path(20);
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::write(&model, b"weights").unwrap();
        let best = ChartRun::new(dir.path(), "a".into(), &curves, None).best.unwrap();
        assert_eq!(best.checkpoint.as_ref(), Some(&model));
        assert!(best.text().ends_with("checkpoint-00000020/model.bpk"), "{}", best.text());
    }

    #[test]
    fn hovering_shows_the_step_its_epoch_and_the_value() {
        let curves = curves();
        assert_eq!(hover_text(Some(("a: total", &curves)), 3.2, 0.25, false), "a: total\nstep 3, epoch 2\nloss 0.25");
        assert_eq!(hover_text(Some(("a: total", &curves)), 1.0, -1.5, true), "a: total\nstep 1, epoch 1\nloss 0.0316");
        assert_eq!(hover_text(None, 7.0, 2.0, false), "step 7\nloss 2");
    }

    #[test]
    fn values_read_with_three_significant_digits() {
        let shown: Vec<String> = [0.0316, 1.0, 2.5, 123.4, 12345.0, 1e-4, 0.0].map(format_value).to_vec();
        assert_eq!(shown, ["0.0316", "1", "2.5", "123", "12345", "1.00e-4", "0"]);
    }

    #[test]
    fn a_config_reads_as_dotted_rows_in_the_files_order() {
        let config =
            serde_json::json!({"preset": "tiny", "optimizer": {"momentum": 0.9}, "max_steps": null, "batch": 2});
        let rows = config_rows(&config);
        let expected = [("preset", "tiny"), ("optimizer.momentum", "0.9"), ("max_steps", "—"), ("batch", "2")];
        assert_eq!(rows, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    }
}
