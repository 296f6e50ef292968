//! Crash recovery for annotation edits: while the Dataset panel has unsaved changes, the faces of
//! every edited image are kept in a recovery file outside the dataset, rewritten at most every
//! few seconds; opening the dataset again after a crash offers them back.
//!
//! The file lives in the user's state folder, never in the dataset: the studio writes the user's
//! data only when told to save. It is named after a hash of the dataset's canonical path, so each
//! dataset has its own, and it is removed once the edits are saved or dropped.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::DatasetPanel;
use super::canvas::Drag;
use crate::app::edit::{EditHistory, ImageRef, faces};
use crate::dataset::{Attributes, Dataset, Face, FaceLandmarks, LandmarkFlag, Origin, SplitKind};
use crate::geometry::{BBox, Landmarks};

/// The longest a change waits before it is in the recovery file: what a crash can lose at most.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(3);

/// Bumped when the file's layout changes: an older facestudio then reports the file instead of
/// misreading it.
const RECOVERY_VERSION: u32 = 1;

/// The recovery file as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RecoveryFile {
    version: u32,
    /// The dataset's canonical root: tells a file of another dataset with the same hash apart.
    root: String,
    /// Seconds since the Unix epoch, shown to the user when the file is offered back.
    written_unix_s: u64,
    images: Vec<RecoveredImage>,
}

/// An edited image, found again by split and relative path (indexes could change if the
/// annotation files were edited outside the studio in between).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RecoveredImage {
    split: SplitKind,
    /// [`crate::dataset::ImageEntry::path`].
    path: String,
    faces: Vec<RecoveredFace>,
}

/// A face of an edited image.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RecoveredFace {
    face: FaceValues,
    /// The face as the annotation files had it, for a face read from them (`None` for a face the
    /// user drew). Restoring finds the loaded face read the same way and takes over its origin, so
    /// saving writes the face back to the files that had it, in its place, re-using its line when
    /// unchanged; without it every restored face would be saved as a new one.
    read_as: Option<FaceValues>,
}

/// What a [`Face`] holds, minus its origin (which points into the annotation files' text).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FaceValues {
    bbox: BBox,
    landmarks: Option<LandmarkValues>,
    attributes: Option<Attributes>,
    score: Option<f32>,
}

/// [`FaceLandmarks`], which has no serde form of its own.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct LandmarkValues {
    points: Landmarks,
    flags: [LandmarkFlag; 5],
}

impl From<&Face> for FaceValues {
    fn from(face: &Face) -> FaceValues {
        FaceValues {
            bbox: face.bbox,
            landmarks: face.landmarks.map(|l| LandmarkValues { points: l.points, flags: l.flags }),
            attributes: face.attributes,
            score: face.score,
        }
    }
}

impl FaceValues {
    fn into_face(self, origin: Origin) -> Face {
        Face {
            bbox: self.bbox,
            landmarks: self.landmarks.map(|l| FaceLandmarks { points: l.points, flags: l.flags }),
            attributes: self.attributes,
            score: self.score,
            origin,
        }
    }
}

impl From<&Face> for RecoveredFace {
    fn from(face: &Face) -> RecoveredFace {
        RecoveredFace {
            face: FaceValues::from(face),
            read_as: face.origin.0.as_deref().map(|o| FaceValues::from(&o.as_read)),
        }
    }
}

impl RecoveryFile {
    /// The faces of every image `history` touched (see [`EditHistory::touched`]).
    fn of(dataset: &Dataset, history: &EditHistory, written_unix_s: u64) -> RecoveryFile {
        let images = history
            .touched()
            .filter_map(|image| {
                let entry = dataset.split(image.split)?.images.get(image.index)?;
                Some(RecoveredImage {
                    split: image.split,
                    path: entry.path.clone(),
                    faces: entry.faces.iter().map(RecoveredFace::from).collect(),
                })
            })
            .collect();
        RecoveryFile { version: RECOVERY_VERSION, root: root_key(&dataset.root), written_unix_s, images }
    }
}

/// Unsaved edits an earlier session left for the dataset just opened, waiting for the user to
/// restore or discard them.
#[derive(Clone, Debug)]
pub struct PendingRecovery {
    file: RecoveryFile,
}

impl PendingRecovery {
    /// How many images the earlier session had edited.
    pub fn image_count(&self) -> usize {
        self.file.images.len()
    }

    /// When the file was last written, in seconds since the Unix epoch.
    pub fn written_unix_s(&self) -> u64 {
        self.file.written_unix_s
    }
}

/// Where recovery files go unless told otherwise: `$XDG_STATE_HOME/facestudio/recovery`, else
/// `~/.local/state/facestudio/recovery` (state that should survive a reboot, unlike a cache or
/// the temporary folder), else the temporary folder where neither is known.
pub(super) fn default_recovery_dir() -> PathBuf {
    // The XDG specification says relative values are to be ignored.
    let absolute = |name: &str| std::env::var_os(name).map(PathBuf::from).filter(|p| p.is_absolute());
    match absolute("XDG_STATE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".local/state"))) {
        Some(state) => state.join("facestudio").join("recovery"),
        None => std::env::temp_dir().join("facestudio-recovery"),
    }
}

/// The dataset root as recovery files know it: canonical, so that `./data` and `/home/me/data`
/// are the same dataset.
fn root_key(root: &Path) -> String {
    fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()).to_string_lossy().into_owned()
}

/// Where a recovery file that cannot be read is moved, so that it is reported once, not on
/// every open, and is not overwritten by the next write.
fn corrupt_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".corrupt");
    path.with_file_name(name)
}

fn now_unix_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// "3 minutes ago": how long before `now` a file written at `written` was written.
fn age_text(written: u64, now: u64) -> String {
    let seconds = now.saturating_sub(written);
    let (count, unit) = match seconds {
        0..60 => return "less than a minute ago".to_string(),
        60..3600 => (seconds / 60, "minute"),
        3600..86400 => (seconds / 3600, "hour"),
        _ => (seconds / 86400, "day"),
    };
    format!("{count} {unit}{} ago", if count == 1 { "" } else { "s" })
}

fn read_file(path: &Path) -> io::Result<RecoveryFile> {
    let file: RecoveryFile = serde_json::from_slice(&fs::read(path)?)?;
    if file.version != RECOVERY_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("format version {}, this facestudio reads version {RECOVERY_VERSION}", file.version),
        ));
    }
    Ok(file)
}

fn write_file(path: &Path, file: &RecoveryFile) -> io::Result<()> {
    let bytes = serde_json::to_vec(file)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    crate::fsutil::write_atomic(path, &bytes)
}

/// `saved` as faces of an image that now holds `loaded`: each face read from the files takes over
/// the origin of a loaded face read the same way (each loaded face at most once).
fn restored_faces(saved: Vec<RecoveredFace>, loaded: &[Face]) -> Vec<Face> {
    let mut taken = vec![false; loaded.len()];
    saved
        .into_iter()
        .map(|recovered| {
            let origin = recovered
                .read_as
                .and_then(|read| {
                    let read = read.into_face(Origin::default());
                    let i = (0..loaded.len())
                        .find(|&i| !taken[i] && loaded[i].origin.0.as_deref().is_some_and(|o| o.as_read == read))?;
                    taken[i] = true;
                    Some(loaded[i].origin.clone())
                })
                .unwrap_or_default();
            recovered.face.into_face(origin)
        })
        .collect()
}

impl DatasetPanel {
    /// The recovery file of the open dataset (whether it exists or not); `None` without a dataset.
    pub fn recovery_path(&self) -> Option<PathBuf> {
        let root = root_key(&self.dataset.as_ref()?.root);
        Some(self.recovery_dir.join(format!("{:016x}.json", crate::fsutil::fnv1a(root.as_bytes()))))
    }

    /// The unsaved edits of an earlier session found when the dataset was opened, until the user
    /// restores or discards them.
    pub fn pending_recovery(&self) -> Option<&PendingRecovery> {
        self.pending_recovery.as_ref()
    }

    /// Writes the recovery file now, whatever the interval. Does nothing without unsaved changes,
    /// or while an earlier session's file waits for the user's answer (it would be overwritten).
    /// Returns whether the file was written; a failure is reported in a notice.
    pub fn write_recovery_now(&mut self) -> bool {
        if self.pending_recovery.is_some() || !self.has_unsaved_changes() {
            return false;
        }
        let (Some(dataset), Some(path)) = (&self.dataset, self.recovery_path()) else { return false };
        let revision = self.history.revision();
        let result = write_file(&path, &RecoveryFile::of(dataset, &self.history, now_unix_s()));
        self.recovery_written_at = Some(Instant::now());
        match result {
            Ok(()) => {
                self.recovery_revision = Some(revision);
                self.recovery_failed = false;
                true
            }
            Err(err) => {
                // Retried at every interval; reported once, not every few seconds.
                if !self.recovery_failed {
                    self.notices.error(format!(
                        "Cannot write the recovery file {} (unsaved edits are not protected from a crash): {err}",
                        path.display()
                    ));
                }
                self.recovery_failed = true;
                false
            }
        }
    }

    /// Deletes the open dataset's recovery file: its edits were saved, or the user dropped them.
    /// An earlier session's file still waiting for an answer is kept.
    pub fn remove_recovery(&mut self) {
        if self.pending_recovery.is_some() {
            return;
        }
        self.recovery_revision = Some(self.history.revision());
        let Some(path) = self.recovery_path() else { return };
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => self.notices.error(format!("Cannot remove the recovery file {}: {err}", path.display())),
        }
    }

    /// Applies the pending recovered edits, one undoable edit per image that differs, so that
    /// they show as unsaved changes and Save writes them. Images the dataset no longer has are
    /// named in a notice. Returns how many images changed.
    pub fn restore_recovery(&mut self) -> usize {
        let Some(pending) = self.pending_recovery.take() else { return 0 };
        // Rewritten (or removed, if nothing changed) at the next check: the earlier session's
        // file keeps the edits until then.
        self.recovery_revision = None;
        let Some(dataset) = &mut self.dataset else { return 0 };
        let mut missing = Vec::new();
        let mut changed = 0;
        for recovered in pending.file.images {
            let index = dataset
                .split(recovered.split)
                .and_then(|split| split.images.iter().position(|entry| entry.path == recovered.path));
            let Some(index) = index else {
                missing.push(format!("{} {}", recovered.split.name(), recovered.path));
                continue;
            };
            let image = ImageRef { split: recovered.split, index };
            let loaded = faces(dataset, image).unwrap_or_default();
            let restored = restored_faces(recovered.faces, loaded);
            if restored.as_slice() != loaded {
                changed += 1;
                self.history.apply(dataset, image, |list| *list = restored);
            }
        }
        self.generation += 1;
        self.notices.info(format!("Restored the unsaved edits of {changed} image(s) from an earlier session"));
        if !missing.is_empty() {
            let shown = missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            let more = if missing.len() > 5 { format!(" and {} more", missing.len() - 5) } else { String::new() };
            self.notices.error(format!(
                "{} recovered image(s) are no longer in the dataset, their edits are lost: {shown}{more}",
                missing.len()
            ));
        }
        changed
    }

    /// Drops the pending recovered edits and deletes their file.
    pub fn discard_recovery(&mut self) {
        if self.pending_recovery.take().is_some() {
            self.remove_recovery();
        }
    }

    /// After a dataset finished loading: forgets the previous dataset's recovery state and looks
    /// for a file an earlier session left for this one.
    pub(super) fn recovery_on_open(&mut self) {
        self.pending_recovery = None;
        // The fresh history is what the files hold: nothing to write, and an earlier session's
        // file must not be removed as if it were stale.
        self.recovery_revision = Some(self.history.revision());
        self.recovery_written_at = None;
        self.recovery_failed = false;
        let Some(path) = self.recovery_path() else { return };
        let root = self.dataset.as_ref().map(|d| root_key(&d.root)).unwrap_or_default();
        match read_file(&path) {
            // Another dataset whose path hashes the same: not ours to offer.
            Ok(file) if file.root != root => {}
            Ok(file) => self.pending_recovery = Some(PendingRecovery { file }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                let aside = corrupt_path(&path);
                let kept = match fs::rename(&path, &aside) {
                    Ok(()) => format!("it was kept as {}", aside.display()),
                    Err(_) => "it was left in place".to_string(),
                };
                self.notices.error(format!(
                    "Cannot read the recovery file {} ({err}); {kept}. Its edits were not restored",
                    path.display()
                ));
            }
        }
    }

    /// Keeps the recovery file in step with the unsaved edits, writing at most every
    /// [`RECOVERY_INTERVAL`]. Runs every frame from [`DatasetPanel::logic`].
    pub(super) fn keep_recovery(&mut self, ctx: &egui::Context) {
        // A pending offer owns the file; a drag moving a box, a corner or a landmark has the faces
        // half-way through an edit.
        let editing = matches!(self.drag, Some(Drag::Move { .. } | Drag::Corner { .. } | Drag::Landmark { .. }));
        if self.dataset.is_none() || self.pending_recovery.is_some() || editing {
            return;
        }
        if self.recovery_revision == Some(self.history.revision()) {
            return;
        }
        if !self.has_unsaved_changes() {
            // Undone back to what the files hold: the file's edits are stale.
            self.remove_recovery();
            return;
        }
        if let Some(at) = self.recovery_written_at {
            let since = at.elapsed();
            if since < RECOVERY_INTERVAL {
                // egui draws only on input: without this the last edit before the user stops
                // would wait for the next mouse move.
                ctx.request_repaint_after(RECOVERY_INTERVAL - since);
                return;
            }
        }
        self.write_recovery_now();
    }

    /// Asks whether to restore an earlier session's unsaved edits, while they are pending.
    pub fn recovery_offer_ui(&mut self, ctx: &egui::Context) {
        let Some(pending) = &self.pending_recovery else { return };
        let count = pending.image_count();
        let question = format!(
            "Unsaved edits from an earlier session were found ({count} image{}, written {}).",
            if count == 1 { "" } else { "s" },
            age_text(pending.written_unix_s(), now_unix_s())
        );
        let mut restore = None;
        egui::Modal::new(egui::Id::unique("recovery-offer")).show(ctx, |ui| {
            ui.heading("Recover unsaved edits");
            ui.label(question);
            ui.horizontal(|ui| {
                if ui.button("Restore").on_hover_text("Apply them as unsaved changes, to review and save").clicked() {
                    restore = Some(true);
                }
                if ui.button("Discard").on_hover_text("Delete them").clicked() {
                    restore = Some(false);
                }
            });
        });
        match restore {
            Some(true) => {
                self.restore_recovery();
            }
            Some(false) => self.discard_recovery(),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::jobs::Jobs;
    use crate::app::notices::Notices;
    use crate::dataset::synth::{SynthConfig, generate};

    /// A synthetic dataset in a temporary folder.
    fn synth_dataset() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &SynthConfig::new(4, 3)).unwrap();
        dir
    }

    /// A panel on the dataset in `data` with its recovery files in `recovery`, as a new session
    /// is right after loading it.
    fn fresh_panel(data: &Path, recovery: &Path) -> DatasetPanel {
        let mut panel = DatasetPanel::new(Jobs::default(), Notices::default());
        panel.recovery_dir = recovery.to_path_buf();
        panel.dataset = Some(Dataset::open(data).unwrap().0);
        panel.recovery_on_open();
        panel
    }

    fn train(index: usize) -> ImageRef {
        ImageRef { split: SplitKind::Train, index }
    }

    #[test]
    fn recovered_edits_come_back_with_the_origins_of_the_loaded_faces() {
        let data = synth_dataset();
        let recovery = tempfile::tempdir().unwrap();
        let mut first = fresh_panel(data.path(), recovery.path());
        let dataset = first.dataset.as_mut().unwrap();
        let drawn = Face::new(BBox::new(2.0, 2.0, 12.0, 12.0).unwrap());
        first.history.apply(dataset, train(0), |list| list.push(drawn));
        assert!(first.write_recovery_now());
        let edited = faces(first.dataset.as_ref().unwrap(), train(0)).unwrap().to_vec();
        let path = first.recovery_path().unwrap();
        assert!(path.starts_with(recovery.path()) && path.is_file());

        let mut second = fresh_panel(data.path(), recovery.path());
        assert_eq!(second.pending_recovery().map(PendingRecovery::image_count), Some(1));
        assert!(!second.write_recovery_now(), "the pending file is not overwritten");
        assert_eq!(second.restore_recovery(), 1);
        let restored = faces(second.dataset.as_ref().unwrap(), train(0)).unwrap();
        assert_eq!(restored, edited.as_slice());
        let (drawn_face, read_faces) = restored.split_last().unwrap();
        assert!(drawn_face.origin.0.is_none(), "a drawn face stays new");
        assert!(read_faces.iter().all(|f| f.origin.0.is_some()), "faces from the files keep their lines");
        assert!(second.has_unsaved_changes());
        second.undo();
        assert!(!second.has_unsaved_changes(), "one undoable edit per image");
        assert!(second.notices.all().iter().all(|n| !n.is_error));
    }

    #[test]
    fn a_corrupt_recovery_file_is_named_in_a_notice_and_kept_aside() {
        let data = synth_dataset();
        let recovery = tempfile::tempdir().unwrap();
        let path = fresh_panel(data.path(), recovery.path()).recovery_path().unwrap();
        fs::write(&path, b"{\"version\": 1, \"root\": tru").unwrap();

        let panel = fresh_panel(data.path(), recovery.path());
        assert!(panel.pending_recovery().is_none());
        let errors: Vec<String> = panel.notices.all().into_iter().filter(|n| n.is_error).map(|n| n.text).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains(&path.display().to_string()), "{errors:?}");
        assert!(!path.exists());
        assert_eq!(fs::read(corrupt_path(&path)).unwrap(), b"{\"version\": 1, \"root\": tru");
    }

    #[test]
    fn images_gone_from_the_dataset_are_reported_not_restored() {
        let data = synth_dataset();
        let recovery = tempfile::tempdir().unwrap();
        let mut first = fresh_panel(data.path(), recovery.path());
        let dataset = first.dataset.as_mut().unwrap();
        first.history.apply(dataset, train(1), |list| list.push(Face::new(BBox::new(1.0, 1.0, 5.0, 5.0).unwrap())));
        first.history.apply(dataset, train(2), |list| list.push(Face::new(BBox::new(1.0, 1.0, 5.0, 5.0).unwrap())));
        assert!(first.write_recovery_now());
        let path = first.recovery_path().unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        json["images"][0]["path"] = "0--Gone/gone.jpg".into();
        fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();

        let mut second = fresh_panel(data.path(), recovery.path());
        assert_eq!(second.restore_recovery(), 1);
        let errors: Vec<String> = second.notices.all().into_iter().filter(|n| n.is_error).map(|n| n.text).collect();
        assert!(errors.len() == 1 && errors[0].contains("train 0--Gone/gone.jpg"), "{errors:?}");
    }

    #[test]
    fn undoing_back_to_the_files_removes_the_recovery_file() {
        let data = synth_dataset();
        let recovery = tempfile::tempdir().unwrap();
        let mut panel = fresh_panel(data.path(), recovery.path());
        let ctx = egui::Context::default();
        let dataset = panel.dataset.as_mut().unwrap();
        panel.history.apply(dataset, train(0), |list| list.push(Face::new(BBox::new(1.0, 1.0, 5.0, 5.0).unwrap())));
        panel.keep_recovery(&ctx);
        let path = panel.recovery_path().unwrap();
        assert!(path.is_file(), "the first change is written at once");
        panel.undo();
        panel.keep_recovery(&ctx);
        assert!(!path.exists());
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(age_text(100, 130), "less than a minute ago");
        assert_eq!(age_text(0, 60), "1 minute ago");
        assert_eq!(age_text(0, 7300), "2 hours ago");
        assert_eq!(age_text(0, 3 * 86400), "3 days ago");
        assert_eq!(age_text(200, 100), "less than a minute ago", "a clock set back");
    }
}
