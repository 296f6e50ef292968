//! safetensors files of a model: the state dict of [`super::state_dict`] (PyTorch's names where
//! PyTorch has the network, facestudio's own module paths elsewhere, see [`TensorNames`]) and, in
//! the header's `__metadata__`, `format` = `pt` (what Hugging Face's loaders expect of a PyTorch
//! state dict), [`CONFIG_KEY`] = the `RetinaFaceConfig` as JSON (a file that cannot say how its
//! network was built would be a bug) and [`NAMES_KEY`] = `pytorch` or `facestudio`.
//!
//! `safetensors.torch.load_file` gives the same dict as `torch.load` of the `.pth`; burn reads
//! either naming back with `SafetensorsStore` (`PyTorchToBurnAdapter`, enum variants skipped, and
//! for PyTorch names the import's renames: `import_checkpoint`).

use std::collections::HashMap;
use std::path::Path;

use ::safetensors::tensor::TensorView;
use ::safetensors::{Dtype, serialize};

use super::{ElementType, ExportError, TensorNames, state_dict};
use crate::model::RetinaFace;

/// The metadata key holding the network's config (JSON).
pub const CONFIG_KEY: &str = "facestudio_config";

/// The metadata key saying whose tensor names the file uses: [`TensorNames::as_str`].
pub const NAMES_KEY: &str = "facestudio_names";

/// Writes `model` (weights and config) as a safetensors file (atomically); returns whose names
/// its tensors carry.
pub fn write_safetensors(model: &RetinaFace, path: &Path) -> Result<TensorNames, ExportError> {
    let (bytes, names) = safetensors_bytes(model)?;
    crate::fsutil::write_atomic(path, &bytes)
        .map_err(|e| ExportError::Write { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(names)
}

/// The safetensors file of `model`, in memory, and whose names its tensors carry.
pub fn safetensors_bytes(model: &RetinaFace) -> Result<(Vec<u8>, TensorNames), ExportError> {
    let names = TensorNames::for_config(&model.config);
    let tensors = state_dict(model, names)?;
    let config = serde_json::to_string(&model.config).map_err(|e| ExportError::Encode(e.to_string()))?;
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (CONFIG_KEY.to_string(), config),
        (NAMES_KEY.to_string(), names.as_str().to_string()),
    ]);
    let mut views = Vec::with_capacity(tensors.len());
    for tensor in &tensors {
        let dtype = match tensor.dtype {
            ElementType::F32 => Dtype::F32,
            ElementType::I64 => Dtype::I64,
        };
        let view = TensorView::new(dtype, tensor.shape.clone(), &tensor.data)
            .map_err(|e| ExportError::Tensor { name: tensor.name.clone(), message: e.to_string() })?;
        views.push((tensor.name.as_str(), view));
    }
    let bytes = serialize(views, Some(metadata)).map_err(|e| ExportError::Encode(e.to_string()))?;
    Ok((bytes, names))
}

#[cfg(test)]
mod tests {
    use ::safetensors::SafeTensors;
    use burn::prelude::*;

    use super::*;
    use crate::model::RetinaFaceConfig;

    #[test]
    fn the_header_holds_the_config_and_the_naming() {
        let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
        let model = RetinaFace::new(&config, &Device::flex());
        let (bytes, names) = safetensors_bytes(&model).unwrap();
        assert_eq!(names, TensorNames::Pytorch);
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let metadata = header.metadata().as_ref().unwrap();
        assert_eq!(metadata["format"], "pt");
        assert_eq!(metadata[NAMES_KEY], "pytorch");
        let stored: RetinaFaceConfig = serde_json::from_str(&metadata[CONFIG_KEY]).unwrap();
        assert_eq!(stored, config);
        let counter = file.tensor("body.stage1.0.1.num_batches_tracked").unwrap();
        assert_eq!((counter.dtype(), counter.shape()), (Dtype::I64, &[][..]));
        assert_eq!(file.tensor("body.stage1.0.0.weight").unwrap().shape(), [8, 3, 3, 3]);
    }

    #[test]
    fn a_report_preset_is_written_under_its_own_names() {
        let config = RetinaFaceConfig::preset("seed-baseline").unwrap().shrunk(0.125);
        let (bytes, names) = safetensors_bytes(&RetinaFace::new(&config, &Device::flex())).unwrap();
        assert_eq!(names, TensorNames::Facestudio);
        let file = SafeTensors::deserialize(&bytes).unwrap();
        assert!(file.tensor("backbone.layer4.2.conv3.weight").is_ok());
        assert!(file.tensor("fpn.c6.conv.weight").is_ok());
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap()[NAMES_KEY], "facestudio");
    }
}
