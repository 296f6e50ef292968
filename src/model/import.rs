//! Loading the checkpoints people already have: Pytorch_Retinaface / Face-Detector-1MB (`.pth`
//! legacy pickle or zip, `.safetensors`; with or without `module.` prefixes and a `state_dict`
//! wrapper) and torchvision ImageNet ResNet weights into the backbone. The name map is an explicit
//! list of renames; whatever is missing, left over or mis-shaped is an error that lists the names.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{
    ApplyError, ApplyResult, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};

use super::config::{BackboneConfig, FpnLevels, RetinaFaceConfig};
use super::network::RetinaFace;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{} does not fit preset {preset:?}: {details}", path.display())]
    Mismatch { path: PathBuf, preset: String, details: String },
    #[error("{} has no PyTorch counterpart for the {what} of this config", path.display())]
    Unsupported { path: PathBuf, what: &'static str },
}

/// Renames from PyTorch names to this crate's module paths, applied in order (regex → replacement).
/// `export` runs them backwards to write checkpoints under the same names.
pub(super) fn pytorch_retinaface_rules(config: &RetinaFaceConfig) -> Vec<(String, String)> {
    let mut rules: Vec<(String, String)> = vec![
        // nn.DataParallel checkpoints prefix every name with `module.`.
        (r"^module\.".into(), String::new()),
    ];
    match config.backbone {
        BackboneConfig::MobileNet025 => {
            // models/net.py MobileNetV1: Sequential(conv, bn, act[, conv, bn, act]) per layer;
            // indices 0/1 are the 3×3 conv and its BN, 3/4 the pointwise conv and its BN.
            for (index, target) in
                [("0", "spatial.conv"), ("1", "spatial.bn"), ("3", "pointwise.conv"), ("4", "pointwise.bn")]
            {
                rules.push((
                    format!(r"^body\.(stage[123])\.(\d+)\.{index}\."),
                    format!("backbone.${{1}}.${{2}}.{target}."),
                ));
            }
        }
        BackboneConfig::ResNet { .. } => {
            // IntermediateLayerGetter over torchvision's resnet: `body.` + torchvision names.
            rules.push((r"^body\.".into(), "backbone.".into()));
        }
    }
    rules.extend(resnet_shortcut_rules());
    let levels = config.fpn.levels.count();
    for i in 1..=levels {
        for (index, part) in [("0", "conv"), ("1", "bn")] {
            // FPN.output1..3 are the lateral 1×1 ConvBns (finest first); merge1..2 the 3×3 ones.
            rules.push((format!(r"^fpn\.output{i}\.{index}\."), format!("fpn.lateral.{}.{part}.", i - 1)));
            rules.push((format!(r"^fpn\.merge{i}\.{index}\."), format!("fpn.merge.{}.{part}.", i - 1)));
        }
        // SSH: conv3X3, conv5X5_1, conv5X5_2, conv7X7_2, conv7x7_3 (sic), each Sequential(conv, bn[, act]).
        for (torch, ours) in [
            ("conv3X3", "conv3x3"),
            ("conv5X5_1", "conv5x5_1"),
            ("conv5X5_2", "conv5x5_2"),
            ("conv7X7_2", "conv7x7_2"),
            ("conv7x7_3", "conv7x7_3"),
        ] {
            for (index, part) in [("0", "conv"), ("1", "bn")] {
                rules.push((format!(r"^ssh{i}\.{torch}\.{index}\."), format!("context.{}.{ours}.{part}.", i - 1)));
            }
        }
    }
    // ClassHead / BboxHead / LandmarkHead: one `conv1x1` per level, index = level.
    for (torch, ours) in [("ClassHead", "class"), ("BboxHead", "bbox"), ("LandmarkHead", "landmark")] {
        rules.push((format!(r"^{torch}\.(\d+)\.conv1x1\."), format!("heads.0.{ours}.${{1}}.")));
    }
    rules
}

/// torchvision's projection shortcut is `downsample = Sequential(conv1x1, bn)`.
fn resnet_shortcut_rules() -> Vec<(String, String)> {
    vec![
        (r"\.downsample\.0\.".into(), ".downsample.conv.".into()),
        (r"\.downsample\.1\.".into(), ".downsample.bn.".into()),
    ]
}

/// Opens `path` with the right reader for its container and the given renames.
enum Store {
    Pytorch(PytorchStore),
    Safetensors(SafetensorsStore),
}

impl Store {
    fn open(path: &Path, rules: &[(String, String)]) -> Result<Store, ImportError> {
        let read_error = |message: String| ImportError::Read { path: path.to_path_buf(), message };
        // A safetensors file starts with an 8-byte header length followed by its JSON header;
        // PyTorch files start with a pickle opcode (legacy) or a zip signature.
        crate::fsutil::check_regular(path, super::file::MAX_MODEL_BYTES).map_err(|e| read_error(e.to_string()))?;
        let head = {
            use std::io::Read;
            let mut head = [0u8; 9];
            let mut file = std::fs::File::open(path).map_err(|e| read_error(e.to_string()))?;
            let n = file.read(&mut head).map_err(|e| read_error(e.to_string()))?;
            head[..n].to_vec()
        };
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors") || head.get(8) == Some(&b'{');
        if is_safetensors {
            let mut store =
                SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter).skip_enum_variants(true);
            for (from, to) in rules {
                store = store.with_key_remapping(from, to.clone());
            }
            return Ok(Store::Safetensors(store.allow_partial(true).validate(false)));
        }
        let mut probe = PytorchStore::from_file(path);
        let keys = crate::guard::catch_third_party(|| probe.keys().map_err(|e| e.to_string()))
            .unwrap_or_else(|_| Err("the checkpoint reader failed on it: the file is truncated or damaged".into()))
            .map_err(read_error)?;
        let mut store = PytorchStore::from_file(path);
        // Training scripts often save {"state_dict": ..., "epoch": ...}.
        if keys.iter().any(|k| k == "state_dict" || k.starts_with("state_dict.")) {
            store = store.with_top_level_key("state_dict");
        }
        for (from, to) in rules {
            store = store.with_key_remapping(from, to.clone());
        }
        Ok(Store::Pytorch(store.map_indices_contiguous(false).allow_partial(true).validate(false)))
    }

    /// Applies what fits; with validation off the store reports (instead of refusing) missing,
    /// unused and mis-shaped tensors, so that [`problems`] can list them all by name.
    fn apply(&mut self, model: &mut RetinaFace, path: &Path) -> Result<ApplyResult, ImportError> {
        // The checkpoint readers may panic on a damaged file: that is a read error like any other.
        let result = crate::guard::catch_third_party(|| match self {
            Store::Pytorch(store) => model.load_from(store).map_err(|e| e.to_string()),
            Store::Safetensors(store) => model.load_from(store).map_err(|e| e.to_string()),
        })
        .unwrap_or_else(|_| Err("the checkpoint reader failed on it: the file is truncated or damaged".into()));
        result.map_err(|message| ImportError::Read { path: path.to_path_buf(), message })
    }
}

/// Lists what went wrong in an import, or `None` when every parameter in scope was loaded and
/// nothing was left over (BatchNorm's `num_batches_tracked` and the names `ignore_unused` accepts
/// aside).
fn problems(
    result: &ApplyResult,
    in_scope: impl Fn(&str) -> bool,
    ignore_unused: impl Fn(&str) -> bool,
) -> Option<String> {
    let missing: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).filter(|p| in_scope(p)).collect();
    let unused: Vec<&str> = result
        .unused
        .iter()
        .map(String::as_str)
        .filter(|p| !p.ends_with("num_batches_tracked") && !ignore_unused(p))
        .collect();
    let errors: Vec<String> = result
        .errors
        .iter()
        .map(|e| match e {
            ApplyError::ShapeMismatch { path, expected, found } => {
                format!("{path}: shape {found:?} in the file, {expected:?} in the model")
            }
            other => other.to_string(),
        })
        .collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing in the file ({}): {}", missing.len(), shown(&missing, ", ")));
    }
    if !unused.is_empty() {
        parts.push(format!("not used by the model ({}): {}", unused.len(), shown(&unused, ", ")));
    }
    if !errors.is_empty() {
        parts.push(format!("mis-shaped ({}): {}", errors.len(), shown(&errors, "; ")));
    }
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// Names listed per group in an import error unless every name is asked for: a checkpoint of
/// another network would otherwise print hundreds.
const NAMES_SHOWN: usize = 6;

static ALL_NAMES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Import errors list every tensor name (`--verbose`), not only the first few per group.
pub fn list_every_name(all: bool) {
    ALL_NAMES.store(all, std::sync::atomic::Ordering::Relaxed);
}

fn shown<S: AsRef<str>>(names: &[S], separator: &str) -> String {
    let all = ALL_NAMES.load(std::sync::atomic::Ordering::Relaxed);
    let count = if all { names.len() } else { names.len().min(NAMES_SHOWN) };
    let mut text = names[..count].iter().map(AsRef::as_ref).collect::<Vec<_>>().join(separator);
    if count < names.len() {
        text.push_str(&format!("{separator}… and {} more (--verbose lists them all)", names.len() - count));
    }
    text
}

/// Whether Pytorch_Retinaface / Face-Detector-1MB have this network's layout (P3–P5, plain SSH,
/// one head stage): only then do their checkpoints import, and `export` write them.
pub(super) fn has_pytorch_layout(config: &RetinaFaceConfig) -> bool {
    config.fpn.levels == FpnLevels::P3ToP5 && config.context.ssh && !config.context.deformable && !config.cascade
}

/// Builds the network of `config` and loads a whole Pytorch_Retinaface-family checkpoint into it.
pub fn import_checkpoint(path: &Path, config: &RetinaFaceConfig, device: &Device) -> Result<RetinaFace, ImportError> {
    if !has_pytorch_layout(config) {
        return Err(ImportError::Unsupported {
            path: path.to_path_buf(),
            what: "pyramid/context/cascade layout (Pytorch_Retinaface checkpoints are P3–P5, plain SSH, one head stage)",
        });
    }
    let mut model = RetinaFace::new(config, device);
    let mut store = Store::open(path, &pytorch_retinaface_rules(config))?;
    let result = store.apply(&mut model, path)?;
    if let Some(details) = problems(&result, |_| true, |_| false) {
        return Err(ImportError::Mismatch { path: path.to_path_buf(), preset: config.preset.clone(), details });
    }
    Ok(model)
}

/// Loads torchvision ImageNet ResNet weights (`resnet50-*.pth`) into the backbone; the classifier
/// (`fc.*`) is ignored, everything else must fit.
pub fn load_backbone(model: &mut RetinaFace, path: &Path) -> Result<(), ImportError> {
    if !matches!(model.config.backbone, BackboneConfig::ResNet { .. }) {
        return Err(ImportError::Unsupported {
            path: path.to_path_buf(),
            what: "MobileNet backbone (ImageNet weights are for ResNet)",
        });
    }
    let mut rules =
        vec![(r"^module\.".to_string(), String::new()), (r"^(conv1|bn1|layer[1-4])\.".into(), "backbone.${1}.".into())];
    rules.extend(resnet_shortcut_rules());
    let mut store = Store::open(path, &rules)?;
    let result = store.apply(model, path)?;
    if let Some(details) = problems(&result, |p| p.starts_with("backbone."), |p| p.starts_with("fc.")) {
        return Err(ImportError::Mismatch { path: path.to_path_buf(), preset: model.config.preset.clone(), details });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use burn::store::{BurnToPyTorchAdapter, SafetensorsStore};
    use safetensors::SafeTensors;
    use safetensors::tensor::TensorView;

    use super::*;
    use crate::model::RetinaFaceConfig;
    use crate::test_support::assets;

    /// Rewrites a safetensors file with renamed tensors (`rename` returns `None` to drop one).
    fn rewrite(bytes: &[u8], out: &Path, rename: impl Fn(&str) -> Option<String>) {
        let file = SafeTensors::deserialize(bytes).unwrap();
        let tensors: BTreeMap<String, TensorView> =
            file.tensors().into_iter().filter_map(|(name, view)| rename(&name).map(|n| (n, view))).collect();
        safetensors::serialize_to_file(tensors, None, out).unwrap();
    }

    fn backbone_outputs(model: &RetinaFace, device: &Device) -> Vec<f32> {
        let x = Tensor::<4>::ones([1, 3, 64, 64], device);
        let [_, c3, _, _] = model.backbone.forward(x);
        c3.unwrap().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn data_parallel_module_prefix_is_accepted() {
        let Some(assets) = assets("data_parallel_module_prefix_is_accepted") else { return };
        let dir = tempfile::tempdir().unwrap();
        let prefixed = dir.path().join("prefixed.safetensors");
        let bytes = std::fs::read(assets.join("weights/mobilenet0.25_Final.safetensors")).unwrap();
        rewrite(&bytes, &prefixed, |name| Some(format!("module.{name}")));
        let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
        import_checkpoint(&prefixed, &config, &Device::flex()).unwrap();
    }

    #[test]
    fn torchvision_resnet_weights_load_into_the_backbone_only() {
        let device = Device::flex();
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let source = RetinaFace::new(&config, &device).valid();
        // Write the backbone under torchvision's names, with an ImageNet classifier beside it.
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours.safetensors");
        source.save_into(&mut SafetensorsStore::from_file(&ours).with_to_adapter(BurnToPyTorchAdapter)).unwrap();
        let torchvision = dir.path().join("resnet18.safetensors");
        let bytes = std::fs::read(&ours).unwrap();
        rewrite(&bytes, &torchvision, |name| {
            // Our own save keeps the enum variant in the path: `backbone.ResNet.layer1…`.
            let name = name.strip_prefix("backbone.ResNet.")?;
            Some(name.replace("downsample.conv.", "downsample.0.").replace("downsample.bn.", "downsample.1."))
        });
        let mut target = RetinaFace::new(&config, &device);
        assert_ne!(backbone_outputs(&target.clone().valid(), &device), backbone_outputs(&source, &device));
        load_backbone(&mut target, &torchvision).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(backbone_outputs(&target.valid(), &device), backbone_outputs(&source, &device));
    }

    #[test]
    fn imagenet_weights_are_refused_for_a_mobilenet() {
        let device = Device::flex();
        let mut model = RetinaFace::new(&RetinaFaceConfig::preset("fd1mb-mnet").unwrap(), &device);
        let err = load_backbone(&mut model, Path::new("resnet50.pth")).unwrap_err();
        assert!(matches!(err, ImportError::Unsupported { .. }), "{err}");
    }
}
