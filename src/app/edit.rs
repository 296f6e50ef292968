//! Annotation edits with undo and redo. An edit replaces the faces of one image; the history
//! keeps both versions, so undo and redo are exact whatever the edit was (move, resize, landmark
//! drag, new face, delete, attribute change).

use std::collections::BTreeSet;

use crate::dataset::{Dataset, Face, SplitKind};

/// Which image an edit touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageRef {
    pub split: SplitKind,
    pub index: usize,
}

#[derive(Clone, Debug)]
struct Edit {
    image: ImageRef,
    before: Vec<Face>,
    after: Vec<Face>,
}

/// The undo and redo stacks and whether the dataset differs from what was last saved.
#[derive(Clone, Debug, Default)]
pub struct EditHistory {
    undo: Vec<Edit>,
    redo: Vec<Edit>,
    /// `undo.len()` when the files last matched the dataset; `None` when no point of the undo
    /// stack matches them any more (a saved state was dropped from the redo stack).
    saved_at: Option<usize>,
    /// Every image an edit touched since the history began, undone edits included: an undone
    /// edit dropped from the redo stack by a newer one can leave its image different from the
    /// files (undo past a save, then edit elsewhere) with no edit left that names it. The
    /// recovery file writes these images, so it never misses an unsaved change.
    touched: BTreeSet<ImageRef>,
    /// Bumped by every change of the faces (edit, undo, redo): the recovery file is rewritten only
    /// when it moved.
    revision: u64,
}

impl EditHistory {
    pub fn new() -> EditHistory {
        EditHistory { undo: Vec::new(), redo: Vec::new(), saved_at: Some(0), touched: BTreeSet::new(), revision: 0 }
    }

    /// Records that `image`'s faces went from `before` to what the dataset holds now. An edit
    /// that changed nothing is not recorded.
    pub fn record(&mut self, dataset: &Dataset, image: ImageRef, before: Vec<Face>) {
        let Some(after) = faces(dataset, image) else { return };
        if after == before.as_slice() {
            return;
        }
        if self.saved_at.is_some_and(|s| s > self.undo.len()) {
            self.saved_at = None;
        }
        self.undo.push(Edit { image, before, after: after.to_vec() });
        self.redo.clear();
        self.touched.insert(image);
        self.revision += 1;
    }

    /// Changes `image`'s faces with `change` as one undoable edit (recorded only if it changed
    /// something) and returns what `change` returned; `None` when there is no such image. Edits
    /// spread over frames (drags) keep the faces from their start and [`EditHistory::record`].
    pub fn apply<R>(
        &mut self,
        dataset: &mut Dataset,
        image: ImageRef,
        change: impl FnOnce(&mut Vec<Face>) -> R,
    ) -> Option<R> {
        let list = faces_mut(dataset, image)?;
        let before = list.clone();
        let result = change(list);
        self.record(dataset, image, before);
        Some(result)
    }

    /// Undoes the last edit; returns the image it touched.
    pub fn undo(&mut self, dataset: &mut Dataset) -> Option<ImageRef> {
        let edit = self.undo.pop()?;
        set_faces(dataset, edit.image, edit.before.clone());
        let image = edit.image;
        self.redo.push(edit);
        self.revision += 1;
        Some(image)
    }

    pub fn redo(&mut self, dataset: &mut Dataset) -> Option<ImageRef> {
        let edit = self.redo.pop()?;
        set_faces(dataset, edit.image, edit.after.clone());
        let image = edit.image;
        self.undo.push(edit);
        self.revision += 1;
        Some(image)
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// The files now hold what the dataset holds.
    pub fn mark_saved(&mut self) {
        self.saved_at = Some(self.undo.len());
    }

    pub fn has_unsaved_changes(&self) -> bool {
        self.saved_at != Some(self.undo.len())
    }

    /// The images any edit of this history touched, in split and index order: a superset of the
    /// images whose faces differ from the files.
    pub fn touched(&self) -> impl Iterator<Item = ImageRef> {
        self.touched.iter().copied()
    }

    /// A number that changes whenever the faces change through this history.
    pub fn revision(&self) -> u64 {
        self.revision
    }
}

pub fn faces(dataset: &Dataset, image: ImageRef) -> Option<&[Face]> {
    dataset.split(image.split).and_then(|s| s.images.get(image.index)).map(|i| i.faces.as_slice())
}

pub fn faces_mut(dataset: &mut Dataset, image: ImageRef) -> Option<&mut Vec<Face>> {
    dataset.split_mut(image.split).and_then(|s| s.images.get_mut(image.index)).map(|i| &mut i.faces)
}

fn set_faces(dataset: &mut Dataset, image: ImageRef, faces: Vec<Face>) {
    if let Some(target) = faces_mut(dataset, image) {
        *target = faces;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};
    use crate::geometry::BBox;

    fn dataset() -> (tempfile::TempDir, Dataset) {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &SynthConfig::new(4, 3)).unwrap();
        let (dataset, _) = Dataset::open(dir.path()).unwrap();
        (dir, dataset)
    }

    #[test]
    fn undo_and_redo_restore_each_version_and_track_saving() {
        let (_dir, mut dataset) = dataset();
        let mut history = EditHistory::new();
        let image = ImageRef { split: SplitKind::Train, index: 0 };
        let original = faces(&dataset, image).unwrap().to_vec();
        assert!(!history.has_unsaved_changes());

        faces_mut(&mut dataset, image).unwrap().push(Face::new(BBox::new(1.0, 1.0, 9.0, 9.0).unwrap()));
        history.record(&dataset, image, original.clone());
        let edited = faces(&dataset, image).unwrap().to_vec();
        assert!(history.has_unsaved_changes());

        assert_eq!(history.undo(&mut dataset), Some(image));
        assert_eq!(faces(&dataset, image).unwrap(), original.as_slice());
        assert!(!history.has_unsaved_changes(), "back at the saved state");
        assert_eq!(history.redo(&mut dataset), Some(image));
        assert_eq!(faces(&dataset, image).unwrap(), edited.as_slice());
        history.mark_saved();
        assert!(!history.has_unsaved_changes());
        history.undo(&mut dataset);
        assert!(history.has_unsaved_changes(), "undoing past a save is a change");
        assert!(history.redo(&mut dataset).is_some() && history.redo(&mut dataset).is_none());
    }

    #[test]
    fn apply_is_one_undoable_edit_and_returns_what_the_change_returns() {
        let (_dir, mut dataset) = dataset();
        let mut history = EditHistory::new();
        let image = ImageRef { split: SplitKind::Train, index: 0 };
        let original = faces(&dataset, image).unwrap().to_vec();
        let added = history.apply(&mut dataset, image, |list| {
            list.push(Face::new(BBox::new(1.0, 1.0, 9.0, 9.0).unwrap()));
            list.len() - 1
        });
        assert_eq!(added, Some(original.len()));
        assert!(history.can_undo());
        history.undo(&mut dataset);
        assert_eq!(faces(&dataset, image).unwrap(), original.as_slice());
        assert_eq!(history.apply(&mut dataset, image, |_| ()), Some(()));
        assert!(!history.can_undo(), "a change that changed nothing is not an edit");
        assert_eq!(history.apply(&mut dataset, ImageRef { split: SplitKind::Train, index: 999 }, |_| ()), None);
    }

    #[test]
    fn touched_images_keep_an_undone_edit_that_a_newer_edit_dropped() {
        let (_dir, mut dataset) = dataset();
        let mut history = EditHistory::new();
        let first = ImageRef { split: SplitKind::Train, index: 0 };
        let second = ImageRef { split: SplitKind::Train, index: 1 };
        let add = |list: &mut Vec<Face>| list.push(Face::new(BBox::new(1.0, 1.0, 9.0, 9.0).unwrap()));
        history.apply(&mut dataset, second, add);
        history.mark_saved();
        history.undo(&mut dataset);
        history.apply(&mut dataset, first, add);
        assert!(!history.can_redo(), "the undone edit is gone");
        assert_eq!(history.touched().collect::<Vec<_>>(), vec![first, second]);
        assert_eq!(history.revision(), 3, "edit, undo, edit");
        history.mark_saved();
        assert_eq!(history.revision(), 3, "saving changes no face");
    }

    #[test]
    fn an_edit_that_changes_nothing_is_not_recorded() {
        let (_dir, dataset) = dataset();
        let mut history = EditHistory::new();
        let image = ImageRef { split: SplitKind::Val, index: 0 };
        history.record(&dataset, image, faces(&dataset, image).unwrap().to_vec());
        assert!(!history.can_undo());
    }

    #[test]
    fn a_new_edit_after_undoing_past_the_save_point_stays_unsaved() {
        let (_dir, mut dataset) = dataset();
        let mut history = EditHistory::new();
        let image = ImageRef { split: SplitKind::Train, index: 1 };
        let before = faces(&dataset, image).unwrap().to_vec();
        faces_mut(&mut dataset, image).unwrap().clear();
        history.record(&dataset, image, before.clone());
        history.mark_saved();
        history.undo(&mut dataset);
        faces_mut(&mut dataset, image).unwrap().push(Face::new(BBox::new(0.0, 0.0, 5.0, 5.0).unwrap()));
        history.record(&dataset, image, before);
        assert!(history.has_unsaved_changes());
        history.undo(&mut dataset);
        assert!(history.has_unsaved_changes(), "the saved version is gone from the history");
    }
}
