//! The PR curves as a PNG, for a report or a quick look without a plotting tool.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use super::error::PlotError;
use super::report::EvalReport;

const SIZE: (u32, u32) = (900, 640);
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Registers egui's bundled Ubuntu font once: plotters draws no text without a registered font,
/// and the machine's fonts are not to be relied on (servers often have none).
fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bundled font is a valid TrueType file; if it ever were not, labels are just missing.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
    });
}

/// Draws precision over recall for every setting, with the AP in the legend, and writes it
/// atomically to `path` as PNG.
pub fn write_curves_png(report: &EvalReport, path: impl AsRef<Path>) -> Result<(), PlotError> {
    write_pr_png(path.as_ref(), pr_series("", report).collect())
}

/// Draws several models' curves overlaid (one line per model and setting, the AP in the legend)
/// and writes the PNG atomically to `path`.
pub fn write_compare_png(models: &[(&str, &EvalReport)], path: impl AsRef<Path>) -> Result<(), PlotError> {
    let series = models.iter().flat_map(|(name, report)| pr_series(name, report)).collect();
    write_pr_png(path.as_ref(), series)
}

/// One `(recall, precision)` line per setting of `report`, named `"<prefix> <setting>  AP …"`.
fn pr_series<'a>(prefix: &'a str, report: &'a EvalReport) -> impl Iterator<Item = (String, Vec<(f64, f64)>)> + 'a {
    report.settings.iter().map(move |setting| {
        let points = setting.curve.iter().filter(|p| p.proposals > 0).map(|p| (p.recall, p.precision)).collect();
        let name = if prefix.is_empty() { setting.name.clone() } else { format!("{prefix} {}", setting.name) };
        (format!("{name}  AP {:.4}", setting.ap), points)
    })
}

fn write_pr_png(path: &Path, series: Vec<(String, Vec<(f64, f64)>)>) -> Result<(), PlotError> {
    let chart = LineChart {
        caption: "WIDER FACE precision / recall",
        x_desc: "recall",
        y_desc: "precision",
        x_range: 0.0..1.0,
        legend: SeriesLabelPosition::LowerLeft,
    };
    write_lines_png(path, &chart, &series)
}

/// Draws named series of `(x, y)` points (y in 0..1, e.g. AP over epochs) and writes the PNG
/// atomically to `path`.
pub fn write_series_png(
    path: impl AsRef<Path>,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), PlotError> {
    let x_max = series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x)).fold(1.0f64, f64::max);
    let chart = LineChart { caption, x_desc, y_desc, x_range: 0.0..x_max, legend: SeriesLabelPosition::UpperLeft };
    write_lines_png(path.as_ref(), &chart, series)
}

struct LineChart<'a> {
    caption: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    x_range: std::ops::Range<f64>,
    legend: SeriesLabelPosition,
}

fn write_lines_png(path: &Path, spec: &LineChart, series: &[(String, Vec<(f64, f64)>)]) -> Result<(), PlotError> {
    let error = |message: String| PlotError { path: path.to_path_buf(), message };
    register_font();
    let mut pixels = vec![255u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| error(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(spec.caption, ("sans-serif", 26))
            .margin(20)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(spec.x_range.clone(), 0f64..1.01f64)
            .map_err(|e| error(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(spec.x_desc)
            .y_desc(spec.y_desc)
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(|e| error(e.to_string()))?;
        for (i, (label, points)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| error(e.to_string()))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(spec.legend.clone())
            .label_font(("sans-serif", 18))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| error(e.to_string()))?;
        root.present().map_err(|e| error(e.to_string()))?;
    }
    let picture = image::RgbImage::from_raw(SIZE.0, SIZE.1, pixels).ok_or_else(|| error("bad pixel buffer".into()))?;
    let mut png = Vec::new();
    picture.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).map_err(|e| error(e.to_string()))?;
    crate::fsutil::write_atomic(path, &png).map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalOptions, FaceBox, GroundTruth, GtImage, Predictions, SettingSpec, evaluate};

    #[test]
    fn png_plot_is_written_and_decodes() {
        let gt = GroundTruth::new(
            vec![GtImage {
                event: "e".into(),
                name: "a".into(),
                boxes: vec![FaceBox { x: 0.0, y: 0.0, w: 10.0, h: 10.0 }],
                details: Vec::new(),
            }],
            vec![SettingSpec { name: "all".into(), keep: vec![vec![0]] }],
        )
        .unwrap();
        let mut predictions = Predictions::new();
        let detection = crate::eval::PredictedBox { x: 0.0, y: 0.0, w: 10.0, h: 10.0, score: 0.9, landmarks: None };
        predictions.insert("e", "a", vec![detection]).unwrap();
        let report = evaluate(&gt, &predictions, &EvalOptions::OFFICIAL);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pr.png");
        write_curves_png(&report, &path).unwrap();
        let decoded = image::open(&path).unwrap();
        assert_eq!((decoded.width(), decoded.height()), SIZE);
        let rgb = decoded.to_rgb8();
        assert!(rgb.pixels().any(|p| p.0 == [31, 119, 180]), "the curve is drawn in the first series colour");
    }
}
