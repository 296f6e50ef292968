//! Thumbnails for the image list: decoded and shrunk on worker threads, uploaded as textures on
//! the UI thread, at most `capacity` kept (least recently shown dropped first). Only rows that
//! are on screen ask for one, so a 12,880-image split costs what its visible rows cost.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};
use egui::{TextureHandle, TextureOptions};
use image::RgbImage;

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIZE: u32 = 64;

enum Thumb {
    Ready { texture: TextureHandle, last_used: u64 },
    Failed,
}

pub struct Thumbnails {
    requests: Sender<PathBuf>,
    results: Receiver<(PathBuf, Option<RgbImage>)>,
    cache: HashMap<PathBuf, Thumb>,
    pending: HashSet<PathBuf>,
    capacity: usize,
    frame: u64,
}

impl Thumbnails {
    pub fn new(workers: usize, capacity: usize) -> Thumbnails {
        // A short queue: rows scrolled past before their turn are asked for again when they come
        // back, instead of decoding a backlog nobody looks at.
        let (requests, jobs) = bounded::<PathBuf>(64);
        let (done, results) = unbounded();
        for _ in 0..workers.max(1) {
            let jobs = jobs.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                for path in jobs {
                    let thumb = crate::detect::load_image(&path).ok().map(|img| {
                        let (w, h) = img.dimensions();
                        let scale = THUMBNAIL_SIZE as f32 / w.max(h).max(1) as f32;
                        let size = |side: u32| ((side as f32 * scale).round() as u32).max(1);
                        image::imageops::thumbnail(&img, size(w), size(h))
                    });
                    if done.send((path, thumb)).is_err() {
                        return;
                    }
                }
            });
        }
        Thumbnails {
            requests,
            results,
            cache: HashMap::new(),
            pending: HashSet::new(),
            capacity: capacity.max(1),
            frame: 0,
        }
    }

    /// Uploads the thumbnails decoded since the last frame and evicts old ones. Call once a frame.
    pub fn update(&mut self, ctx: &egui::Context) {
        self.frame += 1;
        let mut any = false;
        while let Ok((path, image)) = self.results.try_recv() {
            self.pending.remove(&path);
            let thumb = match image {
                Some(img) => {
                    let color = egui::ColorImage::from_rgb([img.width() as usize, img.height() as usize], img.as_raw());
                    let name = format!("thumb:{}", path.display());
                    Thumb::Ready {
                        texture: ctx.load_texture(name, color, TextureOptions::LINEAR),
                        last_used: self.frame,
                    }
                }
                None => Thumb::Failed,
            };
            self.cache.insert(path, thumb);
            any = true;
        }
        if any {
            ctx.request_repaint();
        }
        if self.cache.len() > self.capacity {
            let mut ages: Vec<(u64, PathBuf)> = self
                .cache
                .iter()
                .filter_map(|(p, t)| match t {
                    Thumb::Ready { last_used, .. } => Some((*last_used, p.clone())),
                    Thumb::Failed => None,
                })
                .collect();
            ages.sort();
            for (_, path) in ages.into_iter().take(self.cache.len() - self.capacity) {
                self.cache.remove(&path);
            }
        }
        if !self.pending.is_empty() {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
        }
    }

    /// The thumbnail of `path` if decoded; otherwise asks for it (when the queue has room).
    pub fn get(&mut self, path: &Path) -> Option<&TextureHandle> {
        let frame = self.frame;
        if !self.cache.contains_key(path) && !self.pending.contains(path) {
            match self.requests.try_send(path.to_path_buf()) {
                Ok(()) => {
                    self.pending.insert(path.to_path_buf());
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
            }
        }
        match self.cache.get_mut(path) {
            Some(Thumb::Ready { texture, last_used }) => {
                *last_used = frame;
                Some(texture)
            }
            _ => None,
        }
    }

    /// Thumbnails in the cache.
    #[cfg(test)]
    fn cached(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_arrive_and_the_cache_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..5)
            .map(|i| {
                let path = dir.path().join(format!("{i}.png"));
                RgbImage::from_pixel(200, 100, image::Rgb([i as u8 * 40, 0, 0])).save(&path).unwrap();
                path
            })
            .collect();
        let ctx = egui::Context::default();
        let mut thumbs = Thumbnails::new(2, 3);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            thumbs.update(&ctx);
            let ready = paths.iter().filter(|p| thumbs.get(p).is_some()).count();
            if ready >= 3 {
                let sizes: Vec<[usize; 2]> = paths.iter().filter_map(|p| thumbs.get(p).map(|t| t.size())).collect();
                assert!(sizes.iter().all(|s| *s == [64, 32]), "{sizes:?}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "thumbnails never arrived");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        thumbs.update(&ctx);
        assert!(thumbs.cached() <= 3 + 1, "cache holds {}", thumbs.cached());
    }
}
