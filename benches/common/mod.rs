//! Shared by the benchmarks: a generated WIDER-scale dataset.

use std::fs;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const IMAGES: usize = 12_880;
pub const FACES: usize = 159_424;

/// A seeded generator, so every run parses the same text.
struct Seeded(ChaCha8Rng);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }
}

/// Writes a WIDER-train-sized split (split file and label.txt); every image file gets
/// `image_bytes` (empty for parsing benchmarks, a real JPEG where images are shown).
pub fn write_wider_scale_tree(root: &Path, image_bytes: &[u8]) {
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
        fs::write(&file, image_bytes).unwrap();
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
