//! Opens a WIDER-scale dataset (12,880 images, 159,424 faces in the split file and in label.txt,
//! like WIDER FACE train) and prints the median time. Target: under 150 ms on a 2-core machine.

use std::fs;
use std::path::Path;
use std::time::Instant;

use facestudio::dataset::Dataset;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const IMAGES: usize = 12_880;
const FACES: usize = 159_424;

/// A seeded generator, so every run parses the same text.
struct Seeded(ChaCha8Rng);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }
}

fn write_tree(root: &Path) {
    let mut rng = Seeded(ChaCha8Rng::seed_from_u64(0x9e37_79b9_7f4a_7c15));
    let (mut gt, mut labels) = (String::new(), String::new());
    let mut remaining = FACES;
    for i in 0..IMAGES {
        let left = IMAGES - i;
        let faces =
            if left == 1 { remaining } else { (rng.below(2 * (remaining / left) as u64 + 1) as usize).min(remaining) };
        remaining -= faces;
        let path = format!("{}--Event/{}_Event_image_{i}.jpg", i % 61, i % 61);
        let file = root.join("WIDER_train/images").join(&path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, b"").unwrap();
        gt.push_str(&format!("{path}\n{faces}\n"));
        labels.push_str(&format!("# {path}\n"));
        if faces == 0 {
            gt.push_str("0 0 0 0 0 0 0 0 0 0 \n");
        }
        for _ in 0..faces {
            let (x, y, w, h) = (rng.below(1000), rng.below(700), 1 + rng.below(300), 1 + rng.below(300));
            gt.push_str(&format!("{x} {y} {w} {h} {} 0 0 0 {} 0 \n", rng.below(3), rng.below(3)));
            if rng.below(2) == 0 {
                labels.push_str(&format!("{x} {y} {w} {h}"));
                for k in 0..5 {
                    labels.push_str(&format!(
                        " {}.{} {}.{} 0.0",
                        x + k * 7,
                        rng.below(1000),
                        y + k * 5,
                        rng.below(1000)
                    ));
                }
                labels.push_str(&format!(" 0.{}\n", rng.below(100)));
            } else {
                labels.push_str(&format!("{x} {y} {w} {h}{}\n", " -1.0".repeat(16)));
            }
        }
    }
    fs::create_dir_all(root.join("wider_face_split")).unwrap();
    fs::create_dir_all(root.join("retinaface_gt_v1.1/train")).unwrap();
    fs::write(root.join("wider_face_split/wider_face_train_bbx_gt.txt"), gt).unwrap();
    fs::write(root.join("retinaface_gt_v1.1/train/label.txt"), labels).unwrap();
}

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
    write_tree(&both);
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
