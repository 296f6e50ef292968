//! `facestudio dataset export` and `facestudio dataset import` end to end: a synthetic dataset
//! exported in each interchange format and imported back into the official layout holds the
//! same faces, and neither command writes over what is already on disk unasked.

use std::path::Path;
use std::process::{Command, Output};

use facestudio::dataset::{Dataset, SplitKind};

fn facestudio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facestudio")).args(args).output().expect("the binary runs")
}

/// Runs the binary and returns its stdout, failing the test with its stderr if it fails.
fn succeeds(args: &[&str]) -> (String, String) {
    let out = facestudio(args);
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{args:?}\n{stderr}");
    (stdout, stderr)
}

/// A temporary folder's path as an argument (temporary folders have UTF-8 names).
fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

fn synth(dir: &Path) {
    succeeds(&["dataset", "synth", "--out", s(dir), "--images", "6", "--seed", "2"]);
}

const LABELS: &str = "retinaface_gt_v1.1/train/label.txt";
const SPLIT_FILE: &str = "wider_face_split/wider_face_train_bbx_gt.txt";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn coco_and_cvat_round_trips_write_the_same_label_txt_and_split_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    synth(&data);
    let images = data.join("WIDER_train/images");
    for (format, file) in [("coco", "train.json"), ("cvat", "train.xml")] {
        let out = dir.path().join(file);
        let (stdout, stderr) = succeeds(&["dataset", "export", s(&data), "--format", format, "--out", s(&out)]);
        assert!(stdout.contains("wrote 6 images"), "{stdout}");
        assert!(!stderr.contains("cannot carry"), "{format} carries everything: {stderr}");
        let root = dir.path().join(format);
        let args = ["dataset", "import", s(&out), "--format", format, "--images", s(&images), "--out", s(&root)];
        let (stdout, _) = succeeds(&args);
        assert!(stdout.contains("imported 6 images"), "{stdout}");
        assert_eq!(read(&root.join(LABELS)), read(&data.join(LABELS)), "{format}: label.txt");
        assert_eq!(read(&root.join(SPLIT_FILE)), read(&data.join(SPLIT_FILE)), "{format}: split file");
        let (dataset, _) = Dataset::open(&root).unwrap();
        assert_eq!(dataset.split(SplitKind::Train).unwrap().images.len(), 6, "{format}: the images are in place");
    }
}

#[test]
fn a_yolo_face_round_trip_keeps_every_box_and_landmark_and_warns_about_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    synth(&data);
    let out = dir.path().join("yolo");
    let args = ["dataset", "export", s(&data), "--format", "yolo-face", "--split", "val", "--out", s(&out)];
    let (_, stderr) = succeeds(&args);
    assert!(stderr.contains("yolo-face cannot carry") && stderr.contains("annotation score(s)"), "{stderr}");
    let list = read(&out.join("val.txt"));
    assert!(list.lines().all(|l| l.starts_with("./images/val/")), "{list}");
    let root = dir.path().join("imported");
    let images = out.join("images/val");
    let args = ["dataset", "import", s(&out), "--format", "yolo-face", "--images", s(&images)];
    succeeds(&[&args[..], &["--out", s(&root), "--split", "val"]].concat());
    let (original, _) = Dataset::open(&data).unwrap();
    let (back, _) = Dataset::open(&root).unwrap();
    let (original, back) = (original.split(SplitKind::Val).unwrap(), back.split(SplitKind::Val).unwrap());
    assert_eq!(back.images.len(), original.images.len());
    // Six decimals of sides under 400 px, and f32 rounding: well under a thousandth of a pixel.
    let near = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-3);
    for (b, o) in back.images.iter().zip(&original.images) {
        assert_eq!((&b.path, b.faces.len()), (&o.path, o.faces.len()));
        for (fb, fo) in b.faces.iter().zip(&o.faces) {
            assert!(near(&fb.bbox.corners(), &fo.bbox.corners()), "{}: {fb:?} vs {fo:?}", b.path);
            let (lb, lo) = (fb.landmarks.unwrap().points.to_flat(), fo.landmarks.unwrap().points.to_flat());
            assert!(near(&lb, &lo), "{}: {lb:?} vs {lo:?}", b.path);
        }
    }
}

#[test]
fn an_import_over_an_existing_split_needs_force_and_a_broken_file_is_named_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    synth(&data);
    let json = dir.path().join("train.json");
    succeeds(&["dataset", "export", s(&data), "--format", "coco", "--out", s(&json)]);
    let images = data.join("WIDER_train/images");
    let root = dir.path().join("dataset");
    let args = ["dataset", "import", s(&json), "--format", "coco", "--images", s(&images), "--out", s(&root)];
    succeeds(&args);
    let again = facestudio(&args);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("--force") && stderr.contains("label.txt"), "{stderr}");
    succeeds(&[&args[..], &["--force"]].concat());

    let text = read(&json);
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, &text[..text.len() - 40]).unwrap();
    let args = ["dataset", "import", s(&broken), "--format", "coco", "--images", s(&images), "--out", s(&root)];
    let out = facestudio(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("broken.json:1:"), "{stderr}");
    assert!(!stderr.contains("internal error"), "an error, not a panic: {stderr}");
}

#[test]
fn an_export_onto_the_datasets_own_label_txt_is_refused_and_leaves_it_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    synth(&data);
    let labels = data.join(LABELS);
    let before = read(&labels);
    for format in ["coco", "cvat"] {
        let out = facestudio(&["dataset", "export", s(&data), "--format", format, "--out", s(&labels)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("label.txt") && stderr.contains("--out"), "{stderr}");
    }
    let images = data.join("WIDER_train/images");
    let out = facestudio(&["dataset", "export", s(&data), "--format", "yolo-face", "--out", s(&images)]);
    assert!(!out.status.success(), "a YOLO-face export into the dataset's images folder");
    assert_eq!(read(&labels), before, "label.txt is as it was");
    assert!(!data.join("retinaface_gt_v1.1/train/label.txt.bak").exists());
}

#[test]
fn an_import_refused_for_an_image_in_the_way_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    synth(&data);
    let json = dir.path().join("train.json");
    succeeds(&["dataset", "export", s(&data), "--format", "coco", "--out", s(&json)]);
    let (dataset, _) = Dataset::open(&data).unwrap();
    let last = &dataset.split(SplitKind::Train).unwrap().images.last().unwrap().path;
    let root = dir.path().join("dataset");
    let in_the_way = root.join("WIDER_train/images").join(last);
    std::fs::create_dir_all(in_the_way.parent().unwrap()).unwrap();
    std::fs::write(&in_the_way, "not this image").unwrap();
    let images = data.join("WIDER_train/images");
    let args = ["dataset", "import", s(&json), "--format", "coco", "--images", s(&images), "--out", s(&root)];
    let out = facestudio(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--force") && stderr.contains(last.as_str()), "{stderr}");
    let mut left: Vec<_> = walk(&root);
    left.sort();
    assert_eq!(left, [in_the_way.clone()], "no other image placed, no annotation file written");
    succeeds(&[&args[..], &["--force"]].concat());
    assert_eq!(
        read(&in_the_way.with_file_name(format!("{}.bak", in_the_way.file_name().unwrap().to_string_lossy()))),
        "not this image"
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}
