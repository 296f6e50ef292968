//! The interchange as a whole (export, import into the official layout, reopening), and the
//! sample images the format tests share.

use std::path::{Path, PathBuf};

use super::*;
use crate::dataset::file_list::FileListStyle;
use crate::dataset::synth::{SynthConfig, generate};
use crate::dataset::{Attributes, Blur, Expression, FaceLandmarks, Illumination, Occlusion, Origin, Pose};
use crate::geometry::{BBox, Landmarks};

fn face(x: f32, y: f32, w: f32, h: f32) -> Face {
    Face {
        bbox: BBox::from_xywh(x, y, w, h).unwrap(),
        landmarks: None,
        attributes: None,
        score: None,
        origin: Origin::default(),
    }
}

fn landmarks(flat: [f32; 10], flags: [LandmarkFlag; 5]) -> Option<FaceLandmarks> {
    Some(FaceLandmarks { points: Landmarks::from_flat(flat), flags })
}

/// Images covering what a face can hold: landmarks with and without an occluded point, none at
/// all, every attribute set, no attributes (a face known to `label.txt` only), a score, an image
/// without faces, and a path with the characters XML must escape.
pub(crate) fn sample_images() -> Vec<AnnotatedImage> {
    use LandmarkFlag::{Occluded, Visible};
    let clear = Face {
        landmarks: landmarks(
            [488.906, 373.643, 542.089, 376.442, 515.031, 412.83, 485.174, 425.893, 538.357, 431.491],
            [Visible; 5],
        ),
        attributes: Some(Attributes::default()),
        score: Some(0.82),
        ..face(449.0, 330.0, 122.0, 149.0)
    };
    let hard = Face {
        landmarks: landmarks(
            [18.5, 30.0, 32.25, 30.5, 25.0, 40.0, 19.0, 50.0, 31.0, 50.5],
            [Visible, Occluded, Visible, Visible, Visible],
        ),
        attributes: Some(Attributes {
            blur: Blur::Heavy,
            expression: Expression::Exaggerated,
            illumination: Illumination::Extreme,
            invalid: true,
            occlusion: Occlusion::Partial,
            pose: Pose::Atypical,
        }),
        ..face(10.25, 20.5, 30.75, 40.0)
    };
    let bare = Face { score: Some(0.5), ..face(600.0, 100.0, 7.0, 8.0) };
    let covered = Face {
        attributes: Some(Attributes { occlusion: Occlusion::Heavy, ..Attributes::default() }),
        ..face(0.0, 0.0, 300.0, 200.0)
    };
    vec![
        AnnotatedImage {
            path: "0--Parade/0_Parade_1.jpg".into(),
            width: 1024,
            height: 768,
            faces: vec![clear, hard, bare],
        },
        AnnotatedImage { path: "1--Handshaking/empty.png".into(), width: 640, height: 480, faces: Vec::new() },
        AnnotatedImage { path: "7--Cheering/a&b \"q\" <1>.jpg".into(), width: 300, height: 200, faces: vec![covered] },
    ]
}

/// A grey image of the given size, in the format its extension names.
pub(crate) fn write_image(path: &Path, width: u32, height: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(width, height, image::Rgb([90, 90, 90])).save(path).unwrap();
}

/// A synthetic dataset whose train split also has a face without landmarks, an invalid face
/// with every attribute set and an occluded landmark, saved through the dataset writers.
fn varied_dataset(root: &Path) -> Dataset {
    generate(root, &SynthConfig::new(3, 5)).unwrap();
    let (mut dataset, _) = Dataset::open(root).unwrap();
    let train = dataset.split_mut(SplitKind::Train).unwrap();
    let faces = &mut train.images[1].faces;
    assert!(faces.len() >= 2, "the synthetic group image has several faces");
    faces[0].landmarks = None;
    faces[1].attributes = Some(Attributes {
        blur: Blur::Normal,
        expression: Expression::Exaggerated,
        illumination: Illumination::Extreme,
        invalid: true,
        occlusion: Occlusion::Heavy,
        pose: Pose::Atypical,
    });
    let lm = train.images[0].faces[0].landmarks.as_mut().unwrap();
    lm.flags[Landmarks::NOSE] = LandmarkFlag::Occluded;
    dataset.save().unwrap();
    Dataset::open(root).unwrap().0
}

fn import(
    input: &Path,
    format: InterchangeFormat,
    images: &Path,
    root: &Path,
    force: bool,
) -> Result<ImportSummary, InterchangeError> {
    let read = read_annotations(input, format, images, SplitKind::Train)?;
    write_official_split(root, SplitKind::Train, images, read, force)
}

#[test]
fn coco_and_cvat_carry_a_dataset_through_export_and_import_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let original = varied_dataset(&dir.path().join("source"));
    let train = original.split(SplitKind::Train).unwrap();
    for (format, file) in [(InterchangeFormat::Coco, "train.json"), (InterchangeFormat::Cvat, "train.xml")] {
        let out = dir.path().join(file);
        let exported = export_split(&original, SplitKind::Train, format, &out).unwrap();
        assert_eq!(exported.images, train.images.len());
        assert!(exported.dropped.is_empty(), "{format} carries everything: {}", exported.dropped);
        let root = dir.path().join(format.name());
        let imported = import(&out, format, &train.images_dir, &root, false).unwrap();
        assert_eq!(imported.images_placed, train.images.len());
        let (back, report) = Dataset::open(&root).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let back = back.split(SplitKind::Train).unwrap();
        assert_eq!(back.images, train.images, "{format}: every face, landmark, flag and attribute");
    }
}

#[test]
fn yolo_face_carries_boxes_and_landmarks_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let original = varied_dataset(&dir.path().join("source"));
    let train = original.split(SplitKind::Train).unwrap();
    let out = dir.path().join("yolo");
    let exported = export_split(&original, SplitKind::Train, InterchangeFormat::YoloFace, &out).unwrap();
    assert_eq!(exported.files, train.images.len() + 1, "a label per image and the list");
    assert_eq!(exported.images_placed, train.images.len());
    assert!(exported.dropped.invalid == 1 && exported.dropped.occluded_points == 1, "{:?}", exported.dropped);
    let root = dir.path().join("imported");
    import(&out, InterchangeFormat::YoloFace, &out.join("images/train"), &root, false).unwrap();
    let (back, _) = Dataset::open(&root).unwrap();
    let back = back.split(SplitKind::Train).unwrap();
    assert_eq!(back.images.len(), train.images.len());
    // Six decimals of sides under 400 px, and f32 rounding: well under a thousandth of a pixel.
    let tol = 1e-3;
    for (b, o) in back.images.iter().zip(&train.images) {
        assert_eq!(b.path, o.path);
        assert_eq!(b.faces.len(), o.faces.len());
        for (fb, fo) in b.faces.iter().zip(&o.faces) {
            assert!(fb.bbox.corners().iter().zip(fo.bbox.corners()).all(|(p, q)| (p - q).abs() < tol), "{fb:?} {fo:?}");
            assert_eq!(fb.landmarks.is_some(), fo.landmarks.is_some());
            if let (Some(lb), Some(lo)) = (fb.landmarks, fo.landmarks) {
                let (pb, po) = (lb.points.to_flat(), lo.points.to_flat());
                assert!(pb.iter().zip(po).all(|(p, q)| (p - q).abs() < tol), "{pb:?} {po:?}");
            }
        }
    }
}

#[test]
fn an_import_refuses_a_split_that_has_annotation_files_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let images_dir = dir.path().join("photos");
    let mut images = sample_images();
    images.retain(|i| !i.path.contains('&'));
    for image in &images {
        write_image(&images_dir.join(&image.path), image.width, image.height);
    }
    let root = dir.path().join("dataset");
    write_official_split(&root, SplitKind::Train, &images_dir, images.clone(), false).unwrap();
    let labels = root.join("retinaface_gt_v1.1/train/label.txt");
    let before = std::fs::read(&labels).unwrap();
    images[0].faces.pop();
    let err = write_official_split(&root, SplitKind::Train, &images_dir, images.clone(), false).unwrap_err();
    assert!(matches!(&err, InterchangeError::SplitExists { files, .. } if files.contains(&labels)), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read(&labels).unwrap(), before, "nothing written");
    let forced = write_official_split(&root, SplitKind::Train, &images_dir, images.clone(), true).unwrap();
    assert!(forced.files.contains(&labels));
    assert_eq!(std::fs::read(crate::fsutil::backup_path(&labels)).unwrap(), before, "the old file kept as .bak");
    write_official_split(&root, SplitKind::Val, &images_dir, images, false).expect("another split is no conflict");
}

#[test]
fn an_image_missing_from_the_images_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faces.json");
    std::fs::write(&file, coco::write(&sample_images(), SplitKind::Train)).unwrap();
    let err = read_annotations(&file, InterchangeFormat::Coco, dir.path(), SplitKind::Train).unwrap_err();
    assert!(
        matches!(&err, InterchangeError::MissingImage { image, .. } if image.ends_with("0--Parade/0_Parade_1.jpg")),
        "{err}"
    );
    assert!(err.to_string().contains("faces.json: image id 1:"), "the entry's position: {err}");
}

/// Every file and folder under `dir` with its content (a symlink by where it points), to show
/// that a refused write left everything as it was.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            let content = if kind.is_symlink() {
                Some(std::fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes())
            } else if kind.is_dir() {
                pending.push(path.clone());
                None
            } else {
                Some(std::fs::read(&path).unwrap())
            };
            found.push((path, content));
        }
    }
    found.sort();
    found
}

/// `images` written as image files under `dir` (the sample images but the one whose name has
/// characters some file systems refuse).
fn photos(dir: &Path) -> Vec<AnnotatedImage> {
    let mut images = sample_images();
    images.retain(|i| !i.path.contains('&'));
    for image in &images {
        write_image(&dir.join(&image.path), image.width, image.height);
    }
    images
}

#[test]
fn an_image_conflict_is_found_before_anything_is_written_and_force_keeps_a_bak() {
    let dir = tempfile::tempdir().unwrap();
    let images_dir = dir.path().join("photos");
    let images = photos(&images_dir);
    let root = dir.path().join("dataset");
    // The second image's place already holds another picture; the first's is free.
    let taken = root.join("WIDER_train/images").join(&images[1].path);
    write_image(&taken, 3, 3);
    let before = snapshot(&root);
    let err = write_official_split(&root, SplitKind::Train, &images_dir, images.clone(), false).unwrap_err();
    assert!(matches!(&err, InterchangeError::ImagesExist { first, count: 1 } if *first == taken), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(snapshot(&root), before, "no image placed, no annotation file written");
    let old = std::fs::read(&taken).unwrap();
    let forced = write_official_split(&root, SplitKind::Train, &images_dir, images.clone(), true).unwrap();
    assert_eq!(forced.images_placed, 2);
    assert_eq!(std::fs::read(&taken).unwrap(), std::fs::read(images_dir.join(&images[1].path)).unwrap());
    assert_eq!(std::fs::read(crate::fsutil::backup_path(&taken)).unwrap(), old, "the replaced image kept as .bak");
}

#[test]
fn something_other_than_a_file_at_an_image_place_is_refused_even_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let images_dir = dir.path().join("photos");
    let images = photos(&images_dir);
    let root = dir.path().join("dataset");
    let folder = root.join("WIDER_train/images").join(&images[0].path);
    std::fs::create_dir_all(&folder).unwrap();
    let before = snapshot(&root);
    let err = write_official_split(&root, SplitKind::Train, &images_dir, images, true).unwrap_err();
    assert!(matches!(&err, InterchangeError::NotAFileToReplace(p) if *p == folder), "{err}");
    assert_eq!(snapshot(&root), before);
}

#[test]
fn one_image_spelled_two_ways_is_listed_twice() {
    let dir = tempfile::tempdir().unwrap();
    write_image(&dir.path().join("x/a.png"), 4, 4);
    let file = dir.path().join("faces.json");
    let images = |a: &str, b: &str| {
        format!(
            r#"{{"images": [{{"id": 1, "file_name": "{a}", "width": 4, "height": 4}},
                {{"id": 2, "file_name": "{b}", "width": 4, "height": 4}}], "categories": [{{"id": 1, "name": "face"}}]}}"#
        )
    };
    for (a, b) in [("x/a.png", "./x/a.png"), ("x/a.png", "x//a.png"), ("./x/./a.png", "x/a.png")] {
        std::fs::write(&file, images(a, b)).unwrap();
        let err = read_annotations(&file, InterchangeFormat::Coco, dir.path(), SplitKind::Train).unwrap_err();
        assert!(err.to_string().contains("faces.json: image id 2: the image \"x/a.png\" is listed twice"), "{err}");
    }
    std::fs::write(&file, images("./x/a.png", "x/a.png").replace("\"x/a.png\"", "\"y/../x/a.png\"")).unwrap();
    assert!(read_annotations(&file, InterchangeFormat::Coco, dir.path(), SplitKind::Train).is_err(), "'..' is refused");
    let one = r#"{"images": [{"id": 1, "file_name": "./x//a.png", "width": 4, "height": 4}], "categories": [{"id": 1, "name": "face"}]}"#;
    std::fs::write(&file, one).unwrap();
    let read = read_annotations(&file, InterchangeFormat::Coco, dir.path(), SplitKind::Train).unwrap();
    assert_eq!(read[0].path, "x/a.png", "the one spelling label.txt gets");
}

/// A COCO or CVAT file naming an image that is a symlink out of `--images` is refused, as a
/// `..` path is; a symlink to another image inside the folder is an image like any other.
#[cfg(unix)]
#[test]
fn an_image_symlink_leading_out_of_the_images_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let images_dir = dir.path().join("photos");
    let mut images = photos(&images_dir);
    images.truncate(1);
    let secret = dir.path().join("secret.jpg");
    write_image(&secret, 4, 4);
    std::os::unix::fs::symlink(&secret, images_dir.join("leak.jpg")).unwrap();
    std::os::unix::fs::symlink(images_dir.join(&images[0].path), images_dir.join("alias.jpg")).unwrap();
    let mut alias = images[0].clone();
    alias.path = "alias.jpg".into();
    let mut leak = images[0].clone();
    leak.path = "leak.jpg".into();
    for (format, text) in [
        (InterchangeFormat::Coco, coco::write(&[images[0].clone(), alias.clone()], SplitKind::Train)),
        (InterchangeFormat::Cvat, cvat::write(&[images[0].clone(), alias.clone()], SplitKind::Train)),
    ] {
        let file = dir.path().join(format!("ok.{format}"));
        std::fs::write(&file, text).unwrap();
        let read = read_annotations(&file, format, &images_dir, SplitKind::Train).unwrap();
        assert_eq!(read[1].path, "alias.jpg", "{format}: a symlink inside the folder keeps its name");
    }
    let cvat = cvat::write(&[images[0].clone(), leak.clone()], SplitKind::Train);
    let line = cvat.lines().position(|l| l.contains("name=\"leak.jpg\"")).unwrap() + 1;
    for (format, text, at) in [
        (
            InterchangeFormat::Coco,
            coco::write(&[images[0].clone(), leak], SplitKind::Train),
            "leak.coco: image id 2:".into(),
        ),
        (InterchangeFormat::Cvat, cvat, format!("leak.cvat:{line}:")),
    ] {
        let file = dir.path().join(format!("leak.{format}"));
        std::fs::write(&file, text).unwrap();
        let err = read_annotations(&file, format, &images_dir, SplitKind::Train).unwrap_err().to_string();
        assert!(err.contains(&at) && err.contains("\"leak.jpg\"") && err.contains("not inside"), "{format}: {err}");
    }
}

#[test]
fn a_folder_in_place_of_an_image_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = photos(dir.path());
    images.truncate(1);
    std::fs::create_dir_all(dir.path().join("hollow.jpg")).unwrap();
    images[0].path = "hollow.jpg".into();
    let file = dir.path().join("faces.json");
    std::fs::write(&file, coco::write(&images, SplitKind::Train)).unwrap();
    let err = read_annotations(&file, InterchangeFormat::Coco, dir.path(), SplitKind::Train).unwrap_err();
    assert!(matches!(err, InterchangeError::NotAFile { .. }), "{err}");
    assert!(
        err.to_string().contains("image id 1: the image") && err.to_string().contains("not a regular file"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_in_place_of_an_annotation_file_is_an_error_not_a_blocked_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("faces.json");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `name` is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    for format in [InterchangeFormat::Coco, InterchangeFormat::Cvat, InterchangeFormat::YoloFace] {
        let err = read_annotations(&fifo, format, dir.path(), SplitKind::Train).unwrap_err().to_string();
        assert!(err.contains("faces.json") && err.contains("not a regular file"), "{format}: {err}");
    }
}

#[test]
fn an_export_onto_the_datasets_own_files_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let dataset = varied_dataset(&root);
    let before = snapshot(&root);
    let train = dataset.split(SplitKind::Train).unwrap();
    let label_txt = root.join("retinaface_gt_v1.1/train/label.txt");
    let val_gt = root.join("wider_face_split/wider_face_val_bbx_gt.txt");
    let cases = [
        (InterchangeFormat::Coco, label_txt.clone()),
        (InterchangeFormat::Cvat, root.join("retinaface_gt_v1.1/train/../train/label.txt")),
        (InterchangeFormat::Coco, val_gt.clone()),
        (InterchangeFormat::Coco, root.join("wider_face_split/new/../train.json")),
        (InterchangeFormat::Cvat, train.images_dir.join("faces.xml")),
        (InterchangeFormat::YoloFace, train.images_dir.clone()),
        (InterchangeFormat::YoloFace, root.join("wider_face_split/yolo")),
    ];
    for (format, out) in cases {
        let err = export_split(&dataset, SplitKind::Train, format, &out).unwrap_err();
        assert!(matches!(err, InterchangeError::IntoDataset { .. }), "{format} to {}: {err}", out.display());
    }
    // A symlink to label.txt as --out is replaced, never written through.
    #[cfg(unix)]
    {
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&label_txt, &link).unwrap();
        export_split(&dataset, SplitKind::Train, InterchangeFormat::Coco, &link).unwrap();
        assert!(!std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }
    assert_eq!(snapshot(&root), before, "the dataset is as it was");
    let beside = root.join("train.json");
    export_split(&dataset, SplitKind::Train, InterchangeFormat::Coco, &beside).expect("beside the annotation folders");
}

#[test]
fn an_export_over_an_older_one_keeps_what_it_replaces_as_bak() {
    let dir = tempfile::tempdir().unwrap();
    let mut dataset = varied_dataset(&dir.path().join("data"));
    let out = dir.path().join("yolo");
    export_split(&dataset, SplitKind::Train, InterchangeFormat::YoloFace, &out).unwrap();
    let train = dataset.split(SplitKind::Train).unwrap();
    let (first, second) = (train.images[0].path.clone(), train.images[1].path.clone());
    let label = |path: &str| out.join("labels/train").join(path).with_extension("txt");
    let old_label = std::fs::read(label(&first)).unwrap();
    let placed = out.join("images/train").join(&second);
    std::fs::remove_file(&placed).unwrap();
    write_image(&placed, 5, 5);
    let old_image = std::fs::read(&placed).unwrap();
    dataset.split_mut(SplitKind::Train).unwrap().images[0].faces.pop();
    let again = export_split(&dataset, SplitKind::Train, InterchangeFormat::YoloFace, &out).unwrap();
    assert_eq!((again.files, again.images_placed), (1, 1), "one label changed, one image differed");
    assert_eq!(std::fs::read(crate::fsutil::backup_path(&label(&first))).unwrap(), old_label);
    assert_eq!(std::fs::read(crate::fsutil::backup_path(&placed)).unwrap(), old_image);
    assert!(!crate::fsutil::backup_path(&label(&second)).exists(), "an unchanged label is not rewritten");
    let json = dir.path().join("train.json");
    std::fs::write(&json, "my notes").unwrap();
    export_split(&dataset, SplitKind::Train, InterchangeFormat::Coco, &json).unwrap();
    assert_eq!(std::fs::read(crate::fsutil::backup_path(&json)).unwrap(), b"my notes");
}

/// Image headers with bytes inserted or changed anywhere: the size is read or refused with an
/// error naming the file, never a panic or an allocation the header asks for.
#[test]
fn damaged_image_headers_are_errors_never_panics() {
    use proptest::test_runner::{Config, TestRunner};
    let dir = tempfile::tempdir().unwrap();
    let mut originals = Vec::new();
    for extension in ["png", "jpg", "bmp", "webp"] {
        let path = dir.path().join(format!("a.{extension}"));
        write_image(&path, 12, 7);
        originals.push((path.clone(), std::fs::read(&path).unwrap()));
    }
    let strategy = (0..originals.len(), 0..64usize, proptest::collection::vec(proptest::num::u8::ANY, 1..6));
    TestRunner::new(Config { cases: 256, ..Config::default() })
        .run(&strategy, |(which, at, bytes)| {
            let (path, original) = &originals[which];
            let mut damaged = original.clone();
            let at = at.min(damaged.len());
            damaged.splice(at..(at + bytes.len()).min(damaged.len()), bytes);
            let file = dir.path().join(path.file_name().unwrap());
            std::fs::write(&file, &damaged).unwrap();
            if let Err(err) = image_size(&file) {
                proptest::prop_assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_split_known_only_from_an_image_list_is_not_exported() {
    let dir = tempfile::tempdir().unwrap();
    let split = Split {
        kind: SplitKind::Test,
        images_dir: dir.path().to_path_buf(),
        images: vec![ImageEntry { path: "a.jpg".into(), faces: Vec::new() }],
        sources: vec![SourceFile {
            path: dir.path().join("list.txt"),
            style: SourceStyle::FileList(FileListStyle::default()),
            order: vec![0],
        }],
    };
    let dataset = Dataset { root: dir.path().to_path_buf(), splits: vec![split] };
    let err =
        export_split(&dataset, SplitKind::Test, InterchangeFormat::Coco, &dir.path().join("out.json")).unwrap_err();
    assert!(matches!(err, InterchangeError::NotAnnotated { split: "test" }), "{err}");
}

#[test]
fn image_sizes_come_from_the_header_turned_upright_by_the_exif_orientation() {
    use image::ImageEncoder;
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("a.png");
    write_image(&png, 33, 17);
    assert_eq!(image_size(&png).unwrap(), (33, 17));
    // A TIFF header with one IFD entry: orientation (0x0112), SHORT, 1 value: 6 (turned 90°).
    let exif = [b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new(&mut bytes);
    encoder.set_exif_metadata(exif.to_vec()).unwrap();
    encoder.write_image(&[128; 40 * 20 * 3], 40, 20, image::ExtendedColorType::Rgb8).unwrap();
    let jpeg = dir.path().join("turned.jpg");
    std::fs::write(&jpeg, bytes).unwrap();
    assert_eq!(image_size(&jpeg).unwrap(), (20, 40), "a portrait photo stored landscape");
    let err = image_size(dir.path()).unwrap_err().to_string();
    assert!(err.contains("a folder"), "{err}");
}

#[test]
fn only_yolo_face_drops_anything_and_it_counts_each_kind() {
    let images = sample_images();
    assert!(InterchangeFormat::Coco.dropped(&images).is_empty());
    assert!(InterchangeFormat::Cvat.dropped(&images).is_empty());
    let dropped = InterchangeFormat::YoloFace.dropped(&images);
    assert_eq!(dropped, Dropped { attributes: 2, invalid: 1, occluded_points: 1, scores: 2 });
    assert_eq!(
        dropped.to_string(),
        "2 face(s) with WIDER attributes, 1 invalid flag(s), 1 occluded landmark flag(s), 2 annotation score(s)"
    );
}

#[test]
fn format_names_parse_back_and_a_wrong_one_lists_them() {
    for format in InterchangeFormat::ALL {
        assert_eq!(format.name().parse::<InterchangeFormat>(), Ok(format));
    }
    let err = "yolo".parse::<InterchangeFormat>().unwrap_err();
    assert!(err.contains("coco, cvat or yolo-face"), "{err}");
}

proptest::proptest! {
    /// Valid files with a few characters inserted anywhere (markup, quotes, separators, digits,
    /// newlines): every parser answers with images or an error naming the file, never a panic.
    #[test]
    fn damaged_files_are_errors_never_panics(at in 0.0..1.0f64, insert in "[<>/\"'&#;:,.=0-9a-z \\n-]{0,6}") {
        let images = sample_images();
        let damage = |text: String| {
            let cut = (text.len() as f64 * at) as usize;
            format!("{}{insert}{}", &text[..cut], &text[cut..])
        };
        let named = |err: InterchangeError, name: &str| err.to_string().contains(name);
        if let Err(err) = coco::parse(Path::new("f.json"), damage(coco::write(&images, SplitKind::Train)).as_bytes()) {
            proptest::prop_assert!(named(err, "f.json"));
        }
        if let Err(err) = cvat::parse(Path::new("f.xml"), &damage(cvat::write(&images, SplitKind::Train))) {
            proptest::prop_assert!(named(err, "f.xml"));
        }
        let label = damage(yolo::label_text(&images[0]));
        if let Err(err) = yolo::parse_label(Path::new("f.txt"), &label, images[0].width, images[0].height) {
            proptest::prop_assert!(named(err, "f.txt"));
        }
    }
}
