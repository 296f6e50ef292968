//! End-to-end tests of the dataset layer on files laid out as people have them on disk.

use std::fs;
use std::path::Path;

use facestudio::dataset::{Dataset, DatasetError, Face, ProblemKind, Severity, SplitKind};
use facestudio::geometry::BBox;

const WIDER_TRAIN: &str = "0--Parade/0_Parade_marchingband_1_849.jpg\n1\n449 330 122 149 0 0 0 0 0 0 \n\
0--Parade/0_Parade_Parade_0_904.jpg\n2\n361 98 263 339 0 0 0 0 0 0 \n78 221 7 8 2 0 0 1 2 1 \n\
1--Handshaking/1_Handshaking_Handshaking_1_35.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n";

const LABEL_TRAIN: &str = "# 0--Parade/0_Parade_marchingband_1_849.jpg\n\
449 330 122 149 488.906 373.643 0.0 542.089 376.442 0.0 515.031 412.83 0.0 485.174 425.893 0.0 538.357 431.491 0.0 0.82\n\
# 0--Parade/0_Parade_Parade_0_904.jpg\n\
361 98 263 339 424.143 251.656 0.0 547.134 232.571 0.0 494.121 325.875 0.0 453.83 368.286 0.0 561.978 342.839 0.0 0.89\n\
78 221 7 8 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0\n\
# 1--Handshaking/1_Handshaking_Handshaking_1_35.jpg\n";

const WIDER_VAL: &str = "0--Parade/0_Parade_marchingband_1_465.jpg\r\n1\r\n345 211 4 4 2 0 0 0 2 0 \r\n";
const LABEL_VAL: &str = "# 0--Parade/0_Parade_marchingband_1_465.jpg\n345 211 4 4\n";
const TEST_LIST: &str = "0--Parade/0_Parade_marchingband_1_737.jpg\n0--Parade/0_Parade_marchingband_1_73.jpg\n";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn touch_images(root: &Path, images_dir: &str, list: &str) {
    for line in list.lines() {
        let path = line.trim().trim_start_matches("# ").trim_start_matches('/');
        if path.ends_with(".jpg") {
            write(root, &format!("{images_dir}/{path}"), "jpeg");
        }
    }
}

fn official_tree(root: &Path) {
    write(root, "wider_face_split/wider_face_train_bbx_gt.txt", WIDER_TRAIN);
    write(root, "wider_face_split/wider_face_val_bbx_gt.txt", WIDER_VAL);
    write(root, "wider_face_split/wider_face_test_filelist.txt", TEST_LIST);
    write(root, "retinaface_gt_v1.1/train/label.txt", LABEL_TRAIN);
    write(root, "retinaface_gt_v1.1/val/label.txt", LABEL_VAL);
    touch_images(root, "WIDER_train/images", WIDER_TRAIN);
    touch_images(root, "WIDER_val/images", WIDER_VAL);
    touch_images(root, "WIDER_test/images", TEST_LIST);
}

const OFFICIAL_FILES: [&str; 5] = [
    "wider_face_split/wider_face_train_bbx_gt.txt",
    "wider_face_split/wider_face_val_bbx_gt.txt",
    "wider_face_split/wider_face_test_filelist.txt",
    "retinaface_gt_v1.1/train/label.txt",
    "retinaface_gt_v1.1/val/label.txt",
];

#[test]
fn official_tree_merges_boxes_attributes_and_landmarks() {
    let dir = tempfile::tempdir().unwrap();
    official_tree(dir.path());
    let (dataset, report) = Dataset::open(dir.path()).unwrap();
    assert_eq!(dataset.splits.len(), 3);
    let train = dataset.split(SplitKind::Train).unwrap();
    assert_eq!(train.images.len(), 3);
    let face = &train.images[1].faces[0];
    assert!(face.landmarks.is_some() && face.attributes.is_some());
    assert_eq!(face.score, Some(0.89));
    assert!(train.images[1].faces[1].is_invalid());
    assert_eq!(report.merges[0].matched, 3);
    assert!(report.merges[0].only_in_wider.is_empty() && report.merges[0].only_in_label.is_empty());
    let test = dataset.split(SplitKind::Test).unwrap();
    assert_eq!(test.images.len(), 2);
    assert!(!test.is_annotated());
}

#[test]
fn unchanged_dataset_saves_byte_identically_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    official_tree(dir.path());
    let (dataset, _) = Dataset::open(dir.path()).unwrap();
    for split in &dataset.splits {
        for (path, _) in split.source_files() {
            fs::remove_file(path).unwrap();
        }
    }
    let written = dataset.save().unwrap();
    assert_eq!(written.len(), 5);
    for (rel, original) in OFFICIAL_FILES.iter().zip([WIDER_TRAIN, WIDER_VAL, TEST_LIST, LABEL_TRAIN, LABEL_VAL]) {
        assert_eq!(fs::read_to_string(dir.path().join(rel)).unwrap(), original, "{rel}");
    }
    assert!(dataset.save().unwrap().is_empty(), "nothing changed, nothing written");
}

#[test]
fn edits_are_saved_to_every_file_with_a_backup_of_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    official_tree(dir.path());
    let (mut dataset, _) = Dataset::open(dir.path()).unwrap();
    let train = dataset.split_mut(SplitKind::Train).unwrap();
    train.images[0].faces[0].bbox = train.images[0].faces[0].bbox.translate(10.0, 0.0).unwrap();
    train.images[2].faces.push(Face::new(BBox::from_xywh(5.0, 6.0, 20.0, 24.0).unwrap()));
    train.images[1].faces.remove(1);
    let written = dataset.save().unwrap();
    assert_eq!(written.len(), 2, "only the train files changed: {written:?}");
    let gt = fs::read_to_string(dir.path().join(OFFICIAL_FILES[0])).unwrap();
    assert!(gt.contains("459 330 122 149 0 0 0 0 0 0 \n"), "{gt}");
    assert!(gt.contains("1_Handshaking_Handshaking_1_35.jpg\n1\n5 6 20 24 0 0 0 0 0 0 \n"), "{gt}");
    assert!(!gt.contains("78 221 7 8"));
    let backup = fs::read_to_string(dir.path().join("wider_face_split/wider_face_train_bbx_gt.txt.bak")).unwrap();
    assert_eq!(backup, WIDER_TRAIN);
    let labels = fs::read_to_string(dir.path().join(OFFICIAL_FILES[3])).unwrap();
    assert!(labels.contains("459 330 122 149 488.906 373.643 0.0"), "{labels}");
    assert!(labels.contains("5 6 20 24 -1.0"), "the new face gets -1 landmarks: {labels}");

    let (reopened, _) = Dataset::open(dir.path()).unwrap();
    let train = reopened.split(SplitKind::Train).unwrap();
    assert_eq!(train.images[0].faces[0].bbox.x1(), 459.0);
    assert_eq!(train.images[1].faces.len(), 1);
    assert_eq!(train.images[2].faces.len(), 1);
}

#[test]
fn pytorch_retinaface_layout_opens_from_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("widerface");
    write(&root, "train/label.txt", LABEL_TRAIN);
    write(&root, "val/wider_val.txt", "/0--Parade/0_Parade_marchingband_1_465.jpg\n");
    touch_images(&root, "train/images", LABEL_TRAIN);
    touch_images(&root, "val/images", "/0--Parade/0_Parade_marchingband_1_465.jpg");
    let (dataset, _) = Dataset::open(dir.path()).unwrap();
    assert_eq!(dataset.root, root);
    let train = dataset.split(SplitKind::Train).unwrap();
    assert_eq!(train.images.len(), 3);
    assert!(train.images[0].faces[0].attributes.is_none(), "label.txt has no WIDER attributes");
    assert_eq!(dataset.split(SplitKind::Val).unwrap().images[0].path, "0--Parade/0_Parade_marchingband_1_465.jpg");
    for split in &dataset.splits {
        for (path, _) in split.source_files() {
            fs::remove_file(path).unwrap();
        }
    }
    dataset.save().unwrap();
    assert_eq!(fs::read_to_string(root.join("train/label.txt")).unwrap(), LABEL_TRAIN);
    assert_eq!(
        fs::read_to_string(root.join("val/wider_val.txt")).unwrap(),
        "/0--Parade/0_Parade_marchingband_1_465.jpg\n"
    );
}

#[test]
fn faces_in_one_file_only_are_listed_and_saved_back_to_that_file_only() {
    let dir = tempfile::tempdir().unwrap();
    official_tree(dir.path());
    let labels = LABEL_TRAIN.replace("78 221 7 8 -1.0", "80 221 7 8 -1.0");
    write(dir.path(), "retinaface_gt_v1.1/train/label.txt", &labels);
    let (dataset, report) = Dataset::open(dir.path()).unwrap();
    let merge = &report.merges[0];
    assert_eq!(merge.matched, 2);
    assert_eq!(merge.only_in_wider.len(), 1);
    assert_eq!(merge.only_in_wider[0].line, 7);
    assert_eq!(merge.only_in_label[0].line, 5);
    assert_eq!(dataset.split(SplitKind::Train).unwrap().images[1].faces.len(), 3);
    for split in &dataset.splits {
        for (path, _) in split.source_files() {
            fs::remove_file(path).unwrap();
        }
    }
    dataset.save().unwrap();
    assert_eq!(fs::read_to_string(dir.path().join(OFFICIAL_FILES[0])).unwrap(), WIDER_TRAIN);
    assert_eq!(fs::read_to_string(dir.path().join(OFFICIAL_FILES[3])).unwrap(), labels);
}

fn open_err(gt: &str) -> Vec<facestudio::dataset::Problem> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "wider_face_split/wider_face_val_bbx_gt.txt", gt);
    touch_images(dir.path(), "WIDER_val/images", "a/b.jpg\n");
    match Dataset::open(dir.path()) {
        Err(DatasetError::Invalid(problems)) => problems,
        other => panic!("expected an invalid dataset, got {other:?}"),
    }
}

#[test]
fn malformed_files_name_the_file_and_line() {
    let problems = open_err("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0 zero\n");
    assert_eq!(problems.len(), 1);
    let message = problems[0].to_string();
    assert!(message.contains("wider_face_val_bbx_gt.txt:3:"), "{message}");
    assert!(message.contains("pose: expected a number"), "{message}");
}

#[test]
fn missing_image_file_is_an_error_naming_the_listing_line() {
    let problems = open_err("a/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \na/missing.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, Some(4));
    assert!(matches!(problems[0].kind, ProblemKind::MissingImage { .. }));
}

#[test]
fn empty_file_is_an_error() {
    let problems = open_err("");
    assert_eq!(problems[0].kind, ProblemKind::EmptyFile);
}

#[test]
fn image_listed_twice_is_an_error() {
    let problems = open_err("a/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \na/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n");
    assert!(matches!(problems[0].kind, ProblemKind::DuplicateImage { first_line: 1, .. }));
}

#[test]
fn check_lists_every_problem_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    official_tree(dir.path());
    write(
        dir.path(),
        "wider_face_split/wider_face_val_bbx_gt.txt",
        "a/b.jpg\n2\n1 2 x 4 0 0 0 0 0 0\n1 2 0 4 0 0 0 0 0 0\n",
    );
    write(dir.path(), "retinaface_gt_v1.1/train/label.txt", "# ../escape.jpg\n1 2 3 4 5 6 0 7 8 0 9 10 0 11 12 0 13\n");
    let problems = Dataset::check(dir.path()).unwrap();
    let kinds: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(kinds.iter().any(|k| k.contains("label.txt:1:") && k.contains("leaves the dataset root")), "{kinds:#?}");
    assert!(kinds.iter().any(|k| k.contains("val_bbx_gt.txt:3:") && k.contains("w: expected a number")), "{kinds:#?}");
    assert!(kinds.iter().any(|k| k.contains("val_bbx_gt.txt:4:") && k.contains("zero size")), "{kinds:#?}");
    assert!(kinds.iter().any(|k| k.contains("val_bbx_gt.txt:1:") && k.contains("does not exist")), "{kinds:#?}");
    assert!(problems.iter().any(|p| p.severity() == Severity::Warning));
}
