//! The `facestudio` binary end to end: the commands a user types, their output and exit codes.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn facestudio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facestudio")).args(args).output().expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn synth(dir: &Path) {
    let out = facestudio(&["dataset", "synth", "--out", dir.to_str().unwrap(), "--images", "12", "--seed", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn help_lists_every_subcommand() {
    let out = facestudio(&["--help"]);
    assert!(out.status.success());
    for command in ["dataset", "eval", "detect", "import", "export", "train", "study", "devices", "open"] {
        assert!(stdout(&out).contains(command), "{command} missing from the help");
    }
}

/// `devices` lists `auto` and the CPU on any machine (and every wgpu adapter with the name that
/// opens it); a device name that does not parse is refused with the accepted names.
#[test]
fn devices_are_listed_and_a_bad_device_name_lists_the_accepted_ones() {
    let out = facestudio(&["devices"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().any(|l| l.starts_with("auto ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("cpu ") && l.contains("CPU (flex, ")), "{text}");
    assert!(!text.lines().any(|l| l.contains("OpenGL") && !l.starts_with('-')), "OpenGL is never offered: {text}");
    let out = facestudio(&["detect", "p.png", "--weights", "missing.bpk", "--device", "tpu"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    for name in ["\"tpu\"", "auto", "cpu", "wgpu[:N]", "cuda[:N]", "metal", "vulkan[:N]", "dx12[:N]"] {
        assert!(text.contains(name), "{name}: {text}");
    }
}

/// A training server builds with `--no-default-features`: no GUI crate may be in that build.
#[test]
fn the_headless_build_has_no_gui_crate() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--no-default-features", "--edges", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--manifest-path", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")])
        .output()
        .expect("cargo runs");
    let tree = stdout(&out);
    assert!(out.status.success() && tree.contains("burn"), "{tree}{}", String::from_utf8_lossy(&out.stderr));
    for gui in ["eframe", "egui", "egui_plot", "rfd", "winit"] {
        assert!(!tree.lines().any(|l| l.split(' ').next() == Some(gui)), "{gui} is in the headless build");
    }
}

/// Without a display the studio cannot open its window: a clear error and the help, no panic.
#[test]
fn the_studio_without_a_display_explains_and_fails_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_facestudio"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot open the studio window"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout(&out).contains("Usage"));
}

#[test]
fn synth_then_stats_json_reports_both_splits() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path());
    let out = facestudio(&["dataset", "stats", dir.path().to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let train = &json["splits"]["train"];
    assert_eq!(train["images"], 12);
    assert_eq!(json["splits"]["val"]["images"], 3);
    assert_eq!(train["faces"], train["faces_with_landmarks"]);
    assert!(train["faces"].as_u64().unwrap() >= 12);
    assert_eq!(train["events"], 3);
    assert_eq!(train["invalid_faces"], 0);
    assert_eq!(train["images_without_faces"], 0);
}

#[test]
fn check_lists_problems_with_file_and_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path());
    let gt = dir.path().join("wider_face_split/wider_face_val_bbx_gt.txt");
    let text = std::fs::read_to_string(&gt).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "1 2 3";
    std::fs::write(&gt, lines.join("\n")).unwrap();
    let clean = facestudio(&["dataset", "check", dir.path().to_str().unwrap()]);
    assert!(!clean.status.success());
    let report = stdout(&clean);
    assert!(report.contains("wider_face_val_bbx_gt.txt:3: error: expected 10 values"), "{report}");
    let stats = facestudio(&["dataset", "stats", dir.path().to_str().unwrap()]);
    assert!(!stats.status.success());
    assert!(String::from_utf8_lossy(&stats.stderr).contains("wider_face_val_bbx_gt.txt:3:"));
}

/// Predictions in `pred` that are the val split's own boxes, except for image `skip` (no
/// prediction file); returns (faces, faces predicted).
fn write_exact_predictions(dir: &Path, pred: &Path, skip: usize) -> (usize, usize) {
    let gt = std::fs::read_to_string(dir.join("wider_face_split/wider_face_val_bbx_gt.txt")).unwrap();
    let mut lines = gt.lines().peekable();
    let mut written = 0;
    let (mut faces, mut predicted) = (0usize, 0usize);
    while let Some(path) = lines.next() {
        let count: usize = lines.next().unwrap().trim().parse().unwrap();
        let boxes: Vec<&str> = (0..count).map(|_| lines.next().unwrap()).collect();
        faces += count;
        if written == skip {
            written += 1;
            continue; // one image without a prediction file
        }
        let (event, name) = path.rsplit_once('/').unwrap();
        let stem = name.trim_end_matches(".jpg");
        predicted += count;
        let mut text = format!("{stem}\n{count}\n");
        for (i, b) in boxes.iter().enumerate() {
            let v: Vec<&str> = b.split_whitespace().take(4).collect();
            text.push_str(&format!("{} {} {} {} {}\n", v[0], v[1], v[2], v[3], 0.99 - i as f64 * 0.01));
        }
        std::fs::create_dir_all(pred.join(event)).unwrap();
        std::fs::write(pred.join(event).join(format!("{stem}.txt")), text).unwrap();
        written += 1;
    }
    (faces, predicted)
}

#[test]
fn eval_of_exact_predictions_on_a_dataset_split_recalls_the_predicted_faces_at_full_precision() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path());
    let pred = dir.path().join("pred");
    let (faces, predicted) = write_exact_predictions(dir.path(), &pred, 2);
    let csv = dir.path().join("curves.csv");
    let png = dir.path().join("curves.png");
    let out = facestudio(&[
        "eval",
        "--gt",
        dir.path().to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
        "--json",
        "--curves-csv",
        csv.to_str().unwrap(),
        "--curves-png",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["missing_prediction_files"], 1);
    assert_eq!(json["images"], 3);
    // Every prediction is exact, so precision is 1 at every threshold and the AP is the recall
    // reached: the faces of the images that have a prediction file.
    let ap = json["all"].as_f64().unwrap();
    let expected = predicted as f64 / faces as f64;
    assert!(predicted < faces && (ap - expected).abs() < 1e-9, "AP {ap}, expected {expected}");
    assert!(std::fs::read_to_string(&csv).unwrap().starts_with("setting,threshold,precision,recall\nall,"));
    assert!(image::open(&png).is_ok());
}

/// Two prediction folders compared: the second misses one image's faces, so its AP is lower by
/// that much and exactly those faces are listed as found by the first only.
#[test]
fn eval_compares_models_face_by_face() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (faces, all) = write_exact_predictions(dir.path(), &a, usize::MAX);
    let (_, fewer) = write_exact_predictions(dir.path(), &b, 1);
    assert_eq!(all, faces);
    let png = dir.path().join("compare.png");
    let (gt, a, b) = (dir.path().to_str().unwrap(), a.to_str().unwrap(), b.to_str().unwrap());
    let out =
        facestudio(&["eval", "--gt", gt, "--pred", a, "--pred", b, "--json", "--curves-png", png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let models = json["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["diff"]["all"], 0.0);
    let diff = models[1]["diff"]["all"].as_f64().unwrap();
    assert!((diff - (fewer as f64 / faces as f64 - 1.0)).abs() < 1e-9, "{diff}");
    assert_eq!(models[1]["missed_found_by_first"]["all"].as_u64().unwrap() as usize, faces - fewer);
    assert_eq!(models[1]["found_not_by_first"]["all"], 0);
    assert!(image::open(&png).is_ok());
    let table = facestudio(&["eval", "--gt", gt, "--pred", a, "--pred", b]);
    assert!(stdout(&table).contains(&format!("all +0 / -{}", faces - fewer)), "{}", stdout(&table));
    let refused = facestudio(&["eval", "--gt", gt, "--pred", a, "--pred", b, "--curves-csv", "x.csv"]);
    assert!(!refused.status.success() && stderr(&refused).contains("--curves-csv"));
}

#[test]
fn eval_of_the_reference_prediction_folder_matches_the_reference_ap() {
    let Some(assets) = std::env::var_os("FACESTUDIO_ASSETS") else {
        println!(
            "SKIPPED: eval_of_the_reference_prediction_folder_matches_the_reference_ap: FACESTUDIO_ASSETS is not set"
        );
        return;
    };
    let assets = Path::new(&assets);
    let dir = tempfile::tempdir().unwrap();
    let zip = std::fs::File::open(assets.join("../reference/eval/prediction_perfect_randscore.zip")).unwrap();
    zip::ZipArchive::new(zip).unwrap().extract(dir.path()).unwrap();
    let gt = assets.join("widerface_eval");
    let pred = dir.path().join("perfect_randscore");
    let out = facestudio(&["eval", "--gt", gt.to_str().unwrap(), "--pred", pred.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for (setting, expected) in
        [("easy", 0.9999434869987024), ("medium", 0.9999693025858654), ("hard", 0.9999218229704124)]
    {
        let ap = json[setting].as_f64().unwrap();
        assert!((ap - expected).abs() < 1e-9, "{setting}: {ap} vs {expected}");
    }
    assert_eq!(json["images"], 3226);
    assert_eq!(json["missing_prediction_files"], 0);
    // The official ground truth carries the attributes: AP by size and attribute per setting.
    for setting in ["easy", "medium", "hard"] {
        for size in ["small", "medium", "large"] {
            assert!(
                json["by_size"][setting][size].is_number() || json["by_size"][setting][size].is_null(),
                "{setting}/{size}"
            );
        }
        assert!(json["by_size"][setting]["large"].as_f64().unwrap() > 0.99, "perfect boxes: {}", json["by_size"]);
        for (attribute, value) in [
            ("blur", "heavy"),
            ("occlusion", "partial"),
            ("pose", "atypical"),
            ("illumination", "extreme"),
            ("expression", "exaggerated"),
        ] {
            assert!(
                json["by_attribute"][setting][attribute][value].as_f64().unwrap() > 0.99,
                "{setting} {attribute} {value}"
            );
        }
        let points = json["operating_points"][setting].as_array().unwrap();
        assert_eq!(points.len(), 6);
        assert_eq!(points[5]["best_f1"], true);
    }
    assert!(json.get("landmarks").is_none(), "the official ground truth has no landmarks");
}

#[test]
fn detect_prints_json_lines_and_a_bad_photo_does_not_stop_the_others() {
    let Some(assets) = common::assets("detect_prints_json_lines_and_a_bad_photo_does_not_stop_the_others") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, b"not a jpeg").unwrap();
    let photo = assets.join("photos/test.jpg");
    let weights = assets.join("weights/mobilenet0.25_Final.pth");
    let out = facestudio(&[
        "detect",
        broken.to_str().unwrap(),
        photo.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--preset",
        "fd1mb-mnet",
        "--conf",
        "0.5",
        "--device",
        "cpu",
    ]);
    assert!(!out.status.success(), "a photo failed, so the exit status says so");
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.jpg"));
    let lines: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    let result = &lines[0];
    assert_eq!((result["width"].as_u64(), result["height"].as_u64()), (Some(1024), Some(624)));
    let detections = result["detections"].as_array().unwrap();
    assert_eq!(detections.len(), 27, "the reference finds 27 faces above 0.5");
    let scores: Vec<f64> = detections.iter().map(|d| d["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted by descending score");
    assert_eq!(detections[0]["box"].as_array().unwrap().len(), 4);
    assert_eq!(detections[0]["landmarks"].as_array().unwrap().len(), 5);
}

#[test]
fn imported_model_file_detects_like_the_checkpoint_and_exports_every_format() {
    let Some(assets) = common::assets("imported_model_file_detects_like_the_checkpoint_and_exports_every_format")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("fd1mb.bpk");
    let weights = assets.join("weights/mobilenet0.25_Final.safetensors");
    let imported =
        facestudio(&["import", weights.to_str().unwrap(), "--preset", "fd1mb-mnet", "--out", model.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let photos = dir.path().join("photos/0--Parade");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(assets.join("photos/test.jpg"), photos.join("test.jpg")).unwrap();
    let out_dir = dir.path().join("out");
    let photo_dir = dir.path().join("photos");
    let mut with_out = vec![
        "detect",
        photo_dir.to_str().unwrap(),
        "--weights",
        model.to_str().unwrap(),
        "--conf",
        "0.5",
        "--device",
        "cpu",
    ];
    with_out.extend([
        "--out",
        out_dir.to_str().unwrap(),
        "--format",
        "json",
        "--format",
        "csv",
        "--format",
        "wider",
        "--format",
        "png",
    ]);
    let out = facestudio(&with_out);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("0--Parade/test.json")).unwrap()).unwrap();
    assert_eq!(json["detections"].as_array().unwrap().len(), 27);
    assert_eq!(std::fs::read_to_string(out_dir.join("0--Parade/test.csv")).unwrap().lines().count(), 28);
    let wider = std::fs::read_to_string(out_dir.join("0--Parade/test.txt")).unwrap();
    assert!(wider.starts_with("test\n27\n"), "{wider}");
    let png = image::open(out_dir.join("0--Parade/test.png")).unwrap();
    assert_eq!((png.width(), png.height()), (1024, 624));
}

#[test]
fn eval_runs_a_model_over_the_ground_truth_images() {
    let Some(assets) = common::assets("eval_runs_a_model_over_the_ground_truth_images") else { return };
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path());
    let weights = assets.join("weights/mobilenet0.25_Final.pth");
    let images = dir.path().join("WIDER_val/images");
    let out = facestudio(&[
        "eval",
        "--gt",
        dir.path().to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--preset",
        "fd1mb-mnet",
        "--images",
        images.to_str().unwrap(),
        "--json",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["images"], 3);
    assert_eq!(json["missing_prediction_files"], 0);
    // The real face detector finds most of the synthetic faces: they are learnable.
    assert!(json["all"].as_f64().unwrap() > 0.5, "{json}");
    assert_eq!(json["tta"], false);
    let mut args = vec!["eval", "--gt", dir.path().to_str().unwrap(), "--weights", weights.to_str().unwrap()];
    args.extend(["--preset", "fd1mb-mnet", "--json", "--device", "cpu", "--tta", "--tta-scales", "1,1.5"]);
    let out = facestudio(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let with_tta: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(with_tta["tta"], true);
    assert!(with_tta["all"].as_f64().unwrap() > 0.5, "{with_tta}");
    let refused =
        facestudio(&["eval", "--gt", dir.path().to_str().unwrap(), "--pred", images.to_str().unwrap(), "--tta"]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("--tta"));
}

/// A training process killed with SIGKILL resumes from its last checkpoint: same step count,
/// same schedule, no step done twice or skipped.
#[test]
fn training_killed_with_sigkill_resumes_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = facestudio(&["dataset", "synth", "--out", data.to_str().unwrap(), "--images", "16", "--seed", "5"]);
    assert!(out.status.success());
    let run = dir.path().join("run");
    let args = [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--preset",
        "tiny",
        "--out",
        run.to_str().unwrap(),
        "--epochs",
        "3",
        "--batch",
        "4",
        "--image-size",
        "96",
        "--val-every",
        "0",
        "--lr-schedule",
        "paper",
        "--device",
        "cpu",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_facestudio")).args(args).spawn().unwrap();
    let state = run.join("state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !state.exists() {
        assert!(std::time::Instant::now() < deadline, "no checkpoint within 300 s");
        assert!(child.try_wait().unwrap().is_none(), "training ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let checkpoint_step = killed_at["step"].as_u64().unwrap();

    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let out = facestudio(&resumed);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let restart = events.iter().rposition(|e| e["event"] == "started").unwrap();
    assert_eq!(events[restart]["resumed_at_step"].as_u64(), Some(checkpoint_step));
    let steps: Vec<u64> =
        events[restart..].iter().filter(|e| e["event"] == "step").map(|e| e["step"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (checkpoint_step + 1..=12).collect();
    assert_eq!(steps, expected, "3 epochs of 4 steps, continued after step {checkpoint_step}");
    assert_eq!(events.last().unwrap()["event"], "finished");
    assert!(run.join("model.bpk").exists());
}

/// The ablation study end to end on a synthetic set (narrowed networks, two steps each): every
/// variant trains, is evaluated by each of its stages and lands in the table; run again, the
/// study finds its variants trained and only re-evaluates.
#[test]
fn the_ablation_study_trains_every_variant_and_writes_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth(&data);
    let out = dir.path().join("study");
    let args = [
        "study",
        "ablation",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--presets",
        "seed-baseline,seed-full",
        "--width",
        "0.125",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--image-size",
        "64",
        "--max-steps",
        "2",
        "--lr-schedule",
        "paper",
        "--device",
        "cpu",
    ];
    let first = facestudio(&args);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    let table = std::fs::read_to_string(out.join("ablation.md")).unwrap();
    assert!(table.contains("| Baseline | `seed-baseline` | all "), "{table}");
    assert!(table.contains("| Full Model | `seed-full` | all "), "{table}");
    assert!(table.contains("0.842 / 0.864 / 0.769"), "the report's numbers stand beside this run's: {table}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ablation.json")).unwrap()).unwrap();
    let variants = json["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[1]["stages"].as_array().unwrap().len(), 2, "the cascade is scored by both stages");
    assert!(image::open(out.join("ablation_ap.png")).is_ok());
    for preset in ["seed-baseline", "seed-full"] {
        assert!(out.join(preset).join("model.bpk").is_file(), "{preset} has its own run folder");
    }

    let again = facestudio(&args);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert_eq!(stderr.matches("already trained").count(), 2, "{stderr}");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Out-of-range arguments are refused where they are parsed, before any work (no model is even
/// read: the weights file does not exist).
#[test]
fn out_of_range_arguments_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("p.png");
    image::RgbImage::new(8, 8).save(&photo).unwrap();
    let photo = photo.to_str().unwrap();
    for (flag, value, needle) in [
        ("--conf", "1.5", "from 0 to 1"),
        ("--nms", "-0.1", "from 0 to 1"),
        ("--batch", "0", "at least 1"),
        ("--top-k", "0", "at least 1"),
        ("--scale", "0", "above 0"),
        ("--scale", "1e9", "at most 8"),
        ("--max-size", "0", "0"),
    ] {
        let out = facestudio(&["detect", photo, "--weights", "missing.bpk", &format!("{flag}={value}")]);
        assert!(!out.status.success(), "{flag} {value}");
        assert!(stderr(&out).contains(needle) && stderr(&out).contains(flag), "{flag} {value}: {}", stderr(&out));
    }
    let data = dir.path().join("data");
    synth(&data);
    for (flag, value, needle) in
        [("--batch", "0", "batch"), ("--epochs", "0", "epochs"), ("--image-size", "100", "multiple of 64")]
    {
        let run = dir.path().join("run");
        let out = facestudio(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--preset",
            "seed-full",
            "--out",
            run.to_str().unwrap(),
            flag,
            value,
        ]);
        assert!(!out.status.success(), "{flag} {value}");
        assert!(stderr(&out).contains(needle), "{flag} {value}: {}", stderr(&out));
        assert!(!run.exists(), "nothing written for a refused run");
    }
}

/// `dataset synth` never writes over a folder that holds files unless told to.
#[test]
fn synth_refuses_a_folder_that_holds_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.txt"), b"keep").unwrap();
    let out = facestudio(&["dataset", "synth", "--out", dir.path().to_str().unwrap(), "--images", "4"]);
    assert!(!out.status.success() && stderr(&out).contains("already holds files"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let forced = facestudio(&["dataset", "synth", "--out", dir.path().to_str().unwrap(), "--images", "4", "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(std::fs::read(dir.path().join("mine.txt")).unwrap(), b"keep");
}

/// Two photos whose results would share files under `--out` are refused, listing them.
#[test]
fn detect_out_refuses_photos_whose_results_would_clash() {
    let dir = tempfile::tempdir().unwrap();
    let mut photos = Vec::new();
    for sub in ["a/event", "b/event"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        let photo = dir.path().join(sub).join("1.png");
        image::RgbImage::new(8, 8).save(&photo).unwrap();
        photos.push(photo.to_str().unwrap().to_string());
    }
    let out_dir = dir.path().join("out");
    let out =
        facestudio(&["detect", &photos[0], &photos[1], "--weights", "missing.bpk", "--out", out_dir.to_str().unwrap()]);
    let text = stderr(&out);
    assert!(!out.status.success() && text.contains("a/event/1.png") && text.contains("b/event/1.png"), "{text}");
    assert!(!out_dir.exists());
}

/// A checkpoint of another network names a few tensors per group; `--verbose` names them all.
#[test]
fn import_errors_list_a_few_names_and_verbose_lists_all() {
    let Some(assets) = common::assets("import_errors_list_a_few_names_and_verbose_lists_all") else { return };
    let weights = assets.join("weights/mobilenet0.25_Final.pth");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.bpk");
    let args =
        ["import", weights.to_str().unwrap(), "--preset", "pytorch-retinaface-r50", "--out", out.to_str().unwrap()];
    let short = stderr(&facestudio(&args));
    assert!(short.contains("--verbose lists them all") && !short.contains("backbone.layer4.2.conv3.weight"), "{short}");
    let long = stderr(&facestudio(&[&args[..], &["--verbose"]].concat()));
    assert!(long.contains("backbone.layer4.2.conv3.weight") && !long.contains("more (--verbose"), "{}", &long[..400]);
    assert!(!out.exists());
}

/// `facestudio … | head`: a reader that goes away ends the output quietly, as Unix tools do.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path());
    for _ in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_facestudio"))
            .args(["dataset", "stats", dir.path().to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let text = stderr(&out);
        assert!(
            !text.contains("panicked") && !text.contains("Broken pipe") && !text.contains("internal error"),
            "{text}"
        );
        assert!(out.status.success() || out.status.signal() == Some(13), "{:?}", out.status);
    }
}

/// A dataset whose annotations are the fd1mb model's own faces (score ≥ 0.8) on the real photos:
/// the model reproduces them exactly, so whatever prelabel adds or review flags is planted.
/// Per image its split-file face lines and the matching `label.txt` lines (with landmarks).
type Annotated = Vec<(String, Vec<String>, Vec<String>)>;

fn model_annotated_dataset(assets: &Path, root: &Path) -> Annotated {
    let weights = assets.join("weights/mobilenet0.25_Final.pth");
    let event = root.join("WIDER_train/images/0--photos");
    std::fs::create_dir_all(&event).unwrap();
    let mut images = Vec::new();
    for name in ["test", "sample"] {
        let photo = event.join(format!("{name}.jpg"));
        std::fs::copy(assets.join(format!("photos/{name}.jpg")), &photo).unwrap();
        let out = facestudio(&[
            "detect",
            photo.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--preset",
            "fd1mb-mnet",
            "--conf",
            "0.8",
            "--device",
            "cpu",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let result: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let (mut lines, mut labels) = (Vec::new(), Vec::new());
        for d in result["detections"].as_array().unwrap() {
            let b: Vec<f64> = d["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let xywh = format!("{:.2} {:.2} {:.2} {:.2}", b[0], b[1], b[2] - b[0], b[3] - b[1]);
            lines.push(format!("{xywh} 0 0 0 0 0 0 "));
            let points: Vec<String> = d["landmarks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| format!("{:.2} {:.2} 0.0", p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                .collect();
            labels.push(format!("{xywh} {} 0.9", points.join(" ")));
        }
        images.push((format!("0--photos/{name}.jpg"), lines, labels));
    }
    images
}

/// The split file, and with `labels` the RetinaFace `label.txt` too (landmarks).
fn write_split_file(root: &Path, images: &Annotated, labels: bool) -> std::path::PathBuf {
    let path = root.join("wider_face_split/wider_face_train_bbx_gt.txt");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let (mut text, mut label_text) = (String::new(), String::new());
    for (image, faces, face_labels) in images {
        text.push_str(&format!("{image}\n{}\n", faces.len()));
        label_text.push_str(&format!("# {image}\n"));
        for (face, label) in faces.iter().zip(face_labels) {
            text.push_str(face);
            text.push('\n');
            label_text.push_str(label);
            label_text.push('\n');
        }
    }
    std::fs::write(&path, text).unwrap();
    if labels {
        let label_path = root.join("retinaface_gt_v1.1/train/label.txt");
        std::fs::create_dir_all(label_path.parent().unwrap()).unwrap();
        std::fs::write(label_path, label_text).unwrap();
    }
    path
}

/// On a dataset the model annotated itself (landmarks to 2 decimals), the evaluation scores its
/// landmarks (an error near 0), gives AP by size and by attribute, and the operating points.
#[test]
fn eval_reports_landmark_accuracy_buckets_and_operating_points() {
    let Some(assets) = common::assets("eval_reports_landmark_accuracy_buckets_and_operating_points") else { return };
    let root = tempfile::tempdir().unwrap();
    let images = model_annotated_dataset(&assets, root.path());
    write_split_file(root.path(), &images, true);
    let faces: usize = images.iter().map(|(_, f, _)| f.len()).sum();
    let weights = assets.join("weights/mobilenet0.25_Final.pth");
    let out = facestudio(&[
        "eval",
        "--gt",
        root.path().to_str().unwrap(),
        "--split",
        "train",
        "--weights",
        weights.to_str().unwrap(),
        "--preset",
        "fd1mb-mnet",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let landmarks = &json["landmarks"];
    assert_eq!(landmarks["faces"].as_u64().unwrap() as usize, faces, "every annotated face is found: {landmarks}");
    assert!(landmarks["nme"].as_f64().unwrap() < 0.002, "{landmarks}");
    assert_eq!(landmarks["failure_rate"], 0.0);
    assert_eq!(landmarks["per_point"].as_array().unwrap().len(), 5);
    // One setting: the buckets are not nested; every face is `clear` (attributes all 0).
    let by_size = json["by_size"].as_object().unwrap();
    assert_eq!(by_size.keys().collect::<Vec<_>>(), ["small", "medium", "large"]);
    assert!(json["by_attribute"]["blur"]["clear"].as_f64().unwrap() > 0.9, "{}", json["by_attribute"]);
    assert!(json["by_attribute"]["blur"]["heavy"].is_null(), "no heavy blur face");
    let points = json["operating_points"]["all"].as_array().unwrap();
    let at = |t: f64| points.iter().find(|p| p["threshold"].as_f64().unwrap() == t).unwrap();
    assert!(at(0.9)["precision"].as_f64().unwrap() >= at(0.02)["precision"].as_f64().unwrap());
    assert!(at(0.02)["recall"].as_f64().unwrap() >= at(0.9)["recall"].as_f64().unwrap());
    let best = points.last().unwrap();
    assert_eq!(best["best_f1"], true);
    assert!(points.iter().all(|p| p["f1"].as_f64().unwrap() <= best["f1"].as_f64().unwrap() + 1e-12));
}

/// Faces removed from a dataset the model reproduces come back with `prelabel`; nothing else
/// changes and a second run adds nothing.
#[test]
fn prelabel_gives_removed_faces_back_and_nothing_twice() {
    let Some(assets) = common::assets("prelabel_gives_removed_faces_back_and_nothing_twice") else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let full = model_annotated_dataset(&assets, &root);
    let kept: Annotated = full
        .iter()
        .map(|(image, faces, labels)| {
            (image.clone(), faces.iter().step_by(2).cloned().collect(), labels.iter().step_by(2).cloned().collect())
        })
        .collect();
    let count = |a: &Annotated| a.iter().map(|(_, f, _)| f.len()).sum::<usize>();
    let removed = count(&full) - count(&kept);
    assert!(removed >= 10, "the photos have faces to remove ({removed})");
    let split_file = write_split_file(&root, &kept, false);
    let weights = assets.join("weights/mobilenet0.25_Final.pth");
    let prelabel = |extra: &[&str]| {
        let mut args = vec!["dataset", "prelabel", root.to_str().unwrap(), "--weights", weights.to_str().unwrap()];
        args.extend(["--preset", "fd1mb-mnet", "--min-score", "0.8", "--json", "--device", "cpu"]);
        args.extend(extra);
        let out = facestudio(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(stdout(&out).trim()).unwrap()
    };
    let dry = prelabel(&["--dry-run"]);
    assert_eq!(dry["images"], 2);
    let before = std::fs::read_to_string(&split_file).unwrap();
    let added = dry["added"].as_u64().unwrap() as usize;
    assert!(added * 10 >= removed * 8 && added <= removed, "{added} of {removed} removed faces found");
    assert_eq!(std::fs::read_to_string(&split_file).unwrap(), before, "a dry run writes nothing");
    assert_eq!(prelabel(&[])["added"].as_u64().unwrap() as usize, added);
    let after = std::fs::read_to_string(&split_file).unwrap();
    for line in before.lines().filter(|l| l.contains(' ')) {
        assert!(after.lines().any(|l| l == line), "a kept face changed: {line}");
    }
    assert!(root.join("wider_face_split/wider_face_train_bbx_gt.txt.bak").exists());
    assert_eq!(prelabel(&[])["added"], 0, "nothing is added twice");
}

/// Planted mistakes of each kind come first in `review`.
#[test]
fn review_puts_planted_mistakes_first() {
    let Some(assets) = common::assets("review_puts_planted_mistakes_first") else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let mut images = model_annotated_dataset(&assets, &root);
    let (_, faces, labels) = &mut images[0];
    // A face nobody drew, a box shifted by half its width, the eyes of another face swapped,
    // a box where there is no face.
    let deleted = faces.remove(0);
    labels.remove(0);
    let shift = |line: &str, tail: &str| {
        let v: Vec<f64> = line.split_whitespace().take(4).map(|t| t.parse().unwrap()).collect();
        format!("{:.2} {:.2} {:.2} {:.2}{tail}", v[0] + v[2] * 0.45, v[1], v[2], v[3])
    };
    faces[0] = shift(&faces[0], " 0 0 0 0 0 0 ");
    let rest: String = labels[0].split_whitespace().skip(4).collect::<Vec<_>>().join(" ");
    labels[0] = shift(&labels[0], &format!(" {rest}"));
    let mut values: Vec<String> = labels[1].split_whitespace().map(String::from).collect();
    values.swap(4, 7);
    values.swap(5, 8);
    labels[1] = values.join(" ");
    faces.push("2.00 2.00 6.00 6.00 0 0 0 0 0 0 ".into());
    labels.push(format!("2.00 2.00 6.00 6.00 {} -1.0", vec!["-1.0"; 15].join(" ")));
    write_split_file(&root, &images, true);
    let weights = assets.join("weights/mobilenet0.25_Final.pth");
    let out = facestudio(&[
        "dataset",
        "review",
        root.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--preset",
        "fd1mb-mnet",
        "--json",
        "--top",
        "4",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let suspects: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut kinds: Vec<&str> = suspects.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["box_mismatch", "landmark_mismatch", "missing_face", "unmatched_annotation"], "{suspects:?}");
    let scores: Vec<f64> = suspects.iter().map(|s| s["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted by score: {scores:?}");
    let missing = suspects.iter().find(|s| s["kind"] == "missing_face").unwrap();
    let planted: Vec<f64> = deleted.split_whitespace().take(2).map(|t| t.parse().unwrap()).collect();
    assert!((missing["box"][0].as_f64().unwrap() - planted[0]).abs() < 2.0, "{missing}");
    assert!(suspects.iter().all(|s| s["image"] == "0--photos/test.jpg"));
}
