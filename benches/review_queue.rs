//! Builds the review queue and pre-labels a WIDER-val-sized split (3,226 images, 40,000 faces)
//! from predictions already made, and prints the median time. Target: the queue under 1 s.

use std::time::Instant;

use facestudio::annotate::{Thresholds, prelabel, review};
use facestudio::dataset::synth::{SynthConfig, generate};
use facestudio::dataset::{Dataset, Face, SplitKind};
use facestudio::detect::Detection;
use facestudio::geometry::BBox;

const IMAGES: usize = 3_226;
const FACES: usize = 40_000;

fn main() {
    // A real split to hold the faces: two synthetic images, their entries repeated to WIDER
    // val's size (review and prelabel read annotations, not pixels).
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path(), &SynthConfig::new(8, 1)).expect("synthetic dataset");
    let (mut dataset, _) = Dataset::open(dir.path()).expect("it opens");
    let split = dataset.split_mut(SplitKind::Val).expect("a val split");
    let template = split.images[0].clone();
    split.images = (0..IMAGES).map(|_| template.clone()).collect();
    let mut state = 7u64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as f32 / (1u64 << 31) as f32
    };
    let mut predictions = Vec::with_capacity(IMAGES);
    for (i, image) in split.images.iter_mut().enumerate() {
        let count = FACES / IMAGES + usize::from(i < FACES % IMAGES);
        let mut faces = Vec::with_capacity(count);
        let mut predicted = Vec::with_capacity(count + 2);
        for _ in 0..count {
            let (x, y, s) = (next() * 900.0, next() * 700.0, 8.0 + next() * 120.0);
            faces.push(Face::new(BBox::new(x, y, x + s, y + s).expect("a box")));
            // Most faces found again, a little off; some missed, some extra.
            if next() < 0.9 {
                let (dx, dy) = (next() * 0.2 * s, next() * 0.2 * s);
                let bbox = BBox::new(x + dx, y + dy, x + s + dx, y + s + dy).expect("a box");
                predicted.push(Detection { bbox, score: 0.3 + 0.7 * next(), landmarks: None });
            }
        }
        for _ in 0..2 {
            let (x, y) = (next() * 900.0, next() * 700.0);
            let bbox = BBox::new(x, y, x + 30.0, y + 30.0).expect("a box");
            predicted.push(Detection { bbox, score: 0.3 + 0.7 * next(), landmarks: None });
        }
        image.faces = faces;
        predictions.push(predicted);
    }
    let t = Thresholds::default();
    let time = |f: &mut dyn FnMut() -> usize| {
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..5 {
            let start = Instant::now();
            n = f();
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], n)
    };
    let split = dataset.split(SplitKind::Val).expect("a val split");
    let (queue_ms, suspects) = time(&mut || review(split, &predictions, &t).len());
    let mut times = Vec::new();
    let mut added = 0;
    for _ in 0..5 {
        let mut copy = dataset.clone();
        let start = Instant::now();
        added = prelabel(copy.split_mut(SplitKind::Val).expect("val"), &predictions, &t, true).added;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let prelabel_ms = times[times.len() / 2];
    println!("| step | images | faces | result | median ms | target |");
    println!("|---|---|---|---|---|---|");
    println!("| review queue | {IMAGES} | {FACES} | {suspects} suspects | {queue_ms:.1} | < 1000 |");
    println!("| prelabel (in memory) | {IMAGES} | {FACES} | {added} added | {prelabel_ms:.1} | |");
}
