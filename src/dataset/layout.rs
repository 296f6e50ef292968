//! Where the annotation files of each split live, for the folder layouts people have on disk.

use std::path::{Path, PathBuf};

use super::SplitKind;
use super::error::DatasetError;

/// The files found for one split.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitFiles {
    pub kind: SplitKind,
    pub images_dir: PathBuf,
    pub wider_gt: Option<PathBuf>,
    pub label_txt: Option<PathBuf>,
    pub file_list: Option<PathBuf>,
}

const LOOKED_FOR: &str = "wider_face_split/wider_face_{train,val}_bbx_gt.txt, \
wider_face_split/wider_face_test_filelist.txt, retinaface_gt_v1.1/{train,val,test}/label.txt, \
{train,val,test}/label.txt and val/wider_val.txt, in the folder and in its sub-folders";

/// Finds the dataset in `root` or, failing that, in the first sub-folder (by name) that holds one,
/// so that opening the folder above a dataset works too.
pub fn discover(root: &Path) -> Result<(PathBuf, Vec<SplitFiles>), DatasetError> {
    if !root.is_dir() {
        return Err(DatasetError::NotAFolder(root.to_path_buf()));
    }
    let splits = splits_in(root);
    if !splits.is_empty() {
        return Ok((root.to_path_buf(), splits));
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|source| DatasetError::Read { path: root.to_path_buf(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    children
        .into_iter()
        .find_map(|dir| {
            let splits = splits_in(&dir);
            (!splits.is_empty()).then_some((dir, splits))
        })
        .ok_or_else(|| DatasetError::NotFound { root: root.to_path_buf(), looked_for: LOOKED_FOR.into() })
}

fn first_file(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates.into_iter().find(|p| p.is_file())
}

fn splits_in(dir: &Path) -> Vec<SplitFiles> {
    SplitKind::ALL
        .iter()
        .filter_map(|&kind| {
            let s = kind.name();
            let split_dir = dir.join("wider_face_split");
            let wider_gt = first_file([split_dir.join(format!("wider_face_{s}_bbx_gt.txt"))]);
            let label_txt = first_file([
                dir.join("retinaface_gt_v1.1").join(s).join("label.txt"),
                dir.join("retinaface_gt").join(s).join("label.txt"),
                dir.join(s).join("label.txt"),
            ]);
            let file_list = first_file([
                split_dir.join(format!("wider_face_{s}_filelist.txt")),
                dir.join(s).join(format!("wider_{s}.txt")),
            ]);
            if wider_gt.is_none() && label_txt.is_none() && file_list.is_none() {
                return None;
            }
            let official = dir.join(format!("WIDER_{s}")).join("images");
            let pytorch = dir.join(s).join("images");
            let official_files = wider_gt.is_some() || file_list.as_ref().is_some_and(|f| f.starts_with(&split_dir));
            let images_dir =
                if official.is_dir() || (official_files && !pytorch.is_dir()) { official } else { pytorch };
            Some(SplitFiles { kind, images_dir, wider_gt, label_txt, file_list })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }

    #[test]
    fn official_tree_with_retinaface_labels() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        touch(&r.join("wider_face_split/wider_face_train_bbx_gt.txt"));
        touch(&r.join("wider_face_split/wider_face_val_bbx_gt.txt"));
        touch(&r.join("wider_face_split/wider_face_test_filelist.txt"));
        touch(&r.join("retinaface_gt_v1.1/train/label.txt"));
        fs::create_dir_all(r.join("WIDER_train/images")).unwrap();
        let (base, splits) = discover(r).unwrap();
        assert_eq!(base, r);
        assert_eq!(splits.len(), 3);
        assert_eq!(splits[0].images_dir, r.join("WIDER_train/images"));
        assert_eq!(splits[0].label_txt, Some(r.join("retinaface_gt_v1.1/train/label.txt")));
        assert_eq!(splits[2].file_list, Some(r.join("wider_face_split/wider_face_test_filelist.txt")));
        assert_eq!(splits[2].images_dir, r.join("WIDER_test/images"));
    }

    #[test]
    fn pytorch_retinaface_layout_found_from_the_parent_folder() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("widerface");
        touch(&r.join("train/label.txt"));
        touch(&r.join("val/wider_val.txt"));
        fs::create_dir_all(r.join("train/images")).unwrap();
        let (base, splits) = discover(dir.path()).unwrap();
        assert_eq!(base, r);
        assert_eq!(splits[0].images_dir, r.join("train/images"));
        assert_eq!(splits[1].file_list, Some(r.join("val/wider_val.txt")));
        assert_eq!(splits[1].images_dir, r.join("val/images"));
    }

    #[test]
    fn folder_without_dataset_says_what_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let err = discover(dir.path()).unwrap_err().to_string();
        assert!(err.contains("wider_face_split"), "{err}");
    }

    #[test]
    fn missing_folder_is_a_clear_error() {
        let err = discover(Path::new("/nonexistent/facestudio")).unwrap_err();
        assert!(matches!(err, DatasetError::NotAFolder(_)));
    }
}
