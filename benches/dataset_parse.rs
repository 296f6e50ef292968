//! Opens a WIDER-scale dataset (12,880 images, 159,424 faces in the split file and in label.txt,
//! like WIDER FACE train) and prints the median time. Target: under 150 ms on a 2-core machine.

use std::fs;
use std::path::Path;
use std::time::Instant;

mod common;

use common::{IMAGES, write_wider_scale_tree};
use facestudio::dataset::Dataset;

/// Median and minimum milliseconds of opening `root`, and the faces found.
fn time_open(root: &Path) -> (f64, f64, usize) {
    let mut times = Vec::new();
    let mut faces = 0;
    for _ in 0..11 {
        let start = Instant::now();
        let (dataset, _) = Dataset::open(root).expect("generated dataset opens");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        faces = dataset.splits[0].images.iter().map(|i| i.faces.len()).sum::<usize>();
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0], faces)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let both = dir.path().join("both");
    write_wider_scale_tree(&both, b"");
    // The same split with only the WIDER split file: what parsing one annotation file costs.
    let split_only = dir.path().join("split_only");
    fs::create_dir_all(split_only.join("wider_face_split")).unwrap();
    fs::rename(both.join("WIDER_train"), split_only.join("WIDER_train")).unwrap();
    std::os::unix::fs::symlink(split_only.join("WIDER_train"), both.join("WIDER_train")).unwrap();
    let gt = "wider_face_split/wider_face_train_bbx_gt.txt";
    fs::copy(both.join(gt), split_only.join(gt)).unwrap();

    println!("| benchmark | images | faces | median ms | min ms | target ms |");
    println!("|---|---|---|---|---|---|");
    let (median, min, faces) = time_open(&split_only);
    println!("| open split file (parse, image stat) | {IMAGES} | {faces} | {median:.1} | {min:.1} | 150 |");
    let (median, min, faces) = time_open(&both);
    println!(
        "| open split file + label.txt (parse both, merge, image stat) | {IMAGES} | {faces} | {median:.1} | {min:.1} | |"
    );
}
