//! Models leave the studio: the network written in formats other tools read. ONNX (`onnx`) is
//! the whole graph; `pth` (a PyTorch zip checkpoint) and `safetensors` are its weights, one state
//! dict ([`state_dict`]) written two ways.
//!
//! Where Pytorch_Retinaface / Face-Detector-1MB build the network (P3–P5, plain SSH, one head
//! stage: the `pytorch-retinaface-*` and `fd1mb-mnet` presets), the state dict carries their
//! names, which are the import's name map (`import.rs`) run backwards, with BatchNorm's running
//! statistics and `num_batches_tracked`: their own `detect.py` loads it with `strict=True`. The
//! other networks (the report's P2–P6 presets, the cascade) exist in no PyTorch code: they keep
//! facestudio's own module paths ([`TensorNames::Facestudio`]), which only safetensors carries.

pub mod onnx;
pub mod pth;
pub mod safetensors;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::store::{BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot};
use burn::tensor::DType;

use super::config::{FpnLevels, RetinaFaceConfig};
use super::import::{has_pytorch_layout, pytorch_retinaface_rules};
use super::network::RetinaFace;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "the {preset} network ({layout}) is not one Pytorch_Retinaface or Face-Detector-1MB builds (they \
         are P3–P5 with plain SSH and one head stage), so no PyTorch code could load a .pth of it; export \
         it as safetensors instead (--format safetensors), under facestudio's own tensor names"
    )]
    NoPytorchLayout { preset: String, layout: String },
    #[error("cannot export tensor {name}: {message}")]
    Tensor { name: String, message: String },
    #[error("the PyTorch name map cannot be run backwards: {0}")]
    NameMap(String),
    #[error("cannot encode the weights: {0}")]
    Encode(String),
    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error(transparent)]
    Onnx(#[from] onnx::OnnxExportError),
    #[error("--static and --with-priors shape the ONNX graph: they need --format onnx")]
    OnnxOptionsWithoutOnnx,
    #[error(transparent)]
    Load(#[from] super::ModelFileError),
    #[error("exporting to {} would replace the model it reads; choose another --out", path.display())]
    ReplacesSource { path: PathBuf },
}

/// The files a model exports to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ModelFormat {
    /// The whole network as an ONNX graph (onnxruntime, OpenCV DNN, TensorRT, ncnn).
    #[default]
    Onnx,
    /// A PyTorch checkpoint Pytorch_Retinaface's code loads (its presets only).
    Pth,
    /// The weights with the config in the metadata (every preset).
    Safetensors,
}

impl ModelFormat {
    pub const ALL: [ModelFormat; 3] = [ModelFormat::Onnx, ModelFormat::Pth, ModelFormat::Safetensors];

    /// The name the CLI and the studio show, also the file extension.
    pub fn name(self) -> &'static str {
        match self {
            ModelFormat::Onnx => "onnx",
            ModelFormat::Pth => "pth",
            ModelFormat::Safetensors => "safetensors",
        }
    }
}

/// Reads the model file (or checkpoint + preset) at `source` on the CPU and writes it to `out`
/// as `format`: what `facestudio export` and the studio's export run. `out` must not be
/// `source` itself, under any spelling. Returns what was written, with the preset and the
/// parameter count.
pub fn export_file(
    source: &Path,
    preset: Option<&str>,
    format: ModelFormat,
    onnx: &onnx::OnnxOptions,
    out: &Path,
) -> Result<String, ExportError> {
    check_request(format, onnx)?;
    if crate::fsutil::same_file(source, out) {
        return Err(ExportError::ReplacesSource { path: out.to_path_buf() });
    }
    let model = super::load_weights(source, preset, &burn::prelude::Device::flex())?;
    let written = export_model(&model, format, onnx, out)?;
    let parameters = burn::module::Module::num_params(&model);
    Ok(format!("{written}, {} preset, {parameters} parameters", model.config.preset))
}

/// The ONNX options only with the onnx format, and only ones that make a graph.
fn check_request(format: ModelFormat, onnx: &onnx::OnnxOptions) -> Result<(), ExportError> {
    if format != ModelFormat::Onnx && *onnx != onnx::OnnxOptions::default() {
        return Err(ExportError::OnnxOptionsWithoutOnnx);
    }
    Ok(onnx::check_options(onnx)?)
}

/// Writes `model` to `out` as `format` (atomically); `onnx` shapes the graph and must be the
/// default for the other formats. Returns what was written, in words for the user.
pub fn export_model(
    model: &RetinaFace,
    format: ModelFormat,
    onnx: &onnx::OnnxOptions,
    out: &Path,
) -> Result<String, ExportError> {
    check_request(format, onnx)?;
    let written = match format {
        ModelFormat::Onnx => {
            onnx::write_onnx(model, onnx, out)?;
            "an ONNX graph".to_string()
        }
        ModelFormat::Pth => {
            pth::write_pth(model, out)?;
            "a PyTorch checkpoint (Pytorch_Retinaface names)".to_string()
        }
        ModelFormat::Safetensors => {
            let names = safetensors::write_safetensors(model, out)?;
            format!("safetensors ({} names, the config in its metadata)", names.as_str())
        }
    };
    Ok(written)
}

/// Whose names an exported state dict carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorNames {
    /// Pytorch_Retinaface / Face-Detector-1MB state-dict names: `body.stage1.0.0.weight`,
    /// `fpn.output1.1.running_var`, `ClassHead.0.conv1x1.bias`.
    Pytorch,
    /// facestudio's module paths (enum variants left out) with PyTorch's parameter names:
    /// `backbone.layer1.0.conv1.weight`, `fpn.c6.bn.weight` (a BatchNorm's gamma), `fpn.c6.bn.bias`
    /// (its beta), `…bn.running_mean`, `…bn.running_var`, `…bn.num_batches_tracked`,
    /// `context.0.conv3x3.conv.weight`, `context.0.conv3x3.offset.weight` (deformable),
    /// `heads.1.landmark.4.bias` (the cascade's second stage).
    Facestudio,
}

impl TensorNames {
    /// PyTorch's names where PyTorch has the network, facestudio's elsewhere.
    pub fn for_config(config: &RetinaFaceConfig) -> TensorNames {
        if has_pytorch_layout(config) { TensorNames::Pytorch } else { TensorNames::Facestudio }
    }

    /// `pytorch` or `facestudio` (the safetensors metadata's `facestudio_names`).
    pub fn as_str(self) -> &'static str {
        match self {
            TensorNames::Pytorch => "pytorch",
            TensorNames::Facestudio => "facestudio",
        }
    }
}

/// The element types a state dict holds: float32 weights and statistics, int64 batch counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementType {
    /// `torch.float32`: weights, biases, running statistics.
    F32,
    /// `torch.int64`: `num_batches_tracked`.
    I64,
}

impl ElementType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElementType::F32 => 4,
            ElementType::I64 => 8,
        }
    }
}

/// One state-dict entry: a contiguous tensor (row-major, little-endian bytes).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportTensor {
    /// The state-dict key.
    pub name: String,
    pub dtype: ElementType,
    /// Empty for a scalar (`num_batches_tracked`).
    pub shape: Vec<usize>,
    /// `numel · dtype.size()` bytes, little-endian, row-major.
    pub data: Vec<u8>,
}

impl ExportTensor {
    /// Elements: the product of the shape (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The model's weights as a PyTorch state dict, in module order (PyTorch's own order for the
/// Pytorch_Retinaface networks): every convolution's weight (and bias), every BatchNorm's
/// `weight`, `bias`, `running_mean`, `running_var` and `num_batches_tracked`. burn keeps no
/// batch counter, so `num_batches_tracked` is 0; PyTorch reads it only to train with
/// `momentum=None`, which these networks never do.
///
/// [`TensorNames::Pytorch`] is refused for networks PyTorch does not have
/// ([`ExportError::NoPytorchLayout`]).
pub fn state_dict(model: &RetinaFace, names: TensorNames) -> Result<Vec<ExportTensor>, ExportError> {
    let map = match names {
        TensorNames::Pytorch => Some(PytorchNames::new(&model.config)?),
        TensorNames::Facestudio => None,
    };
    let mut tensors = Vec::new();
    let mut seen = BTreeSet::new();
    for snapshot in model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true) {
        let ours = snapshot.name.clone();
        let error = |message: String| ExportError::Tensor { name: ours.clone(), message };
        let (_, dtype, shape, _, bytes) = snapshot.into_parts().map_err(|e| error(e.to_string()))?;
        if dtype != DType::F32 {
            return Err(error(format!("{dtype:?} where float32 is expected")));
        }
        let name = match &map {
            Some(map) => map.pytorch_name(&ours)?,
            None => ours.clone(),
        };
        let tensor = ExportTensor { name, dtype: ElementType::F32, shape: shape.to_vec(), data: bytes.to_vec() };
        if tensor.data.len() != tensor.numel() * ElementType::F32.size() {
            return Err(error(format!("{} bytes for shape {:?}", tensor.data.len(), tensor.shape)));
        }
        // PyTorch's BatchNorm keeps a batch counter after its running variance.
        let counter = tensor.name.strip_suffix("running_var").map(|prefix| ExportTensor {
            name: format!("{prefix}num_batches_tracked"),
            dtype: ElementType::I64,
            shape: Vec::new(),
            data: 0i64.to_le_bytes().to_vec(),
        });
        for tensor in std::iter::once(tensor).chain(counter) {
            if !seen.insert(tensor.name.clone()) {
                return Err(ExportError::NameMap(format!("two tensors would be named {}", tensor.name)));
            }
            tensors.push(tensor);
        }
    }
    Ok(tensors)
}

/// What a network has that Pytorch_Retinaface does not, for [`ExportError::NoPytorchLayout`].
fn layout(config: &RetinaFaceConfig) -> String {
    let mut parts = vec![match config.fpn.levels {
        FpnLevels::P2ToP6 => "FPN P2–P6",
        FpnLevels::P3ToP5 => "FPN P3–P5",
    }];
    parts.push(match (config.context.ssh, config.context.deformable) {
        (false, _) => "no context module",
        (true, false) => "SSH",
        (true, true) => "deformable SSH",
    });
    parts.push(if config.cascade { "two-stage cascade" } else { "one head stage" });
    parts.join(", ")
}

/// The import's renames (PyTorch name → module path) and their inverses, applied the way burn's
/// key remapping applies them (every rule in order, each replacing all its matches).
struct PytorchNames {
    from_pytorch: KeyRemapper,
    to_pytorch: KeyRemapper,
}

impl PytorchNames {
    fn new(config: &RetinaFaceConfig) -> Result<PytorchNames, ExportError> {
        if !has_pytorch_layout(config) {
            return Err(ExportError::NoPytorchLayout { preset: config.preset.clone(), layout: layout(config) });
        }
        let rules = pytorch_retinaface_rules(config);
        // Renames compose: the last import rule is the first to undo.
        let mut inverse = Vec::new();
        for (pattern, replacement) in rules.iter().rev() {
            if let Some(rule) = invert_rule(pattern, replacement).map_err(ExportError::NameMap)? {
                inverse.push(rule);
            }
        }
        let compile = |rules: Vec<(String, String)>| {
            KeyRemapper::from_patterns(rules).map_err(|e| ExportError::NameMap(e.to_string()))
        };
        Ok(PytorchNames { from_pytorch: compile(rules)?, to_pytorch: compile(inverse)? })
    }

    /// The PyTorch name of the module path `ours`, checked to import back as `ours`.
    fn pytorch_name(&self, ours: &str) -> Result<String, ExportError> {
        let theirs = rename(&self.to_pytorch, ours);
        let back = rename(&self.from_pytorch, &theirs);
        if back != ours {
            return Err(ExportError::NameMap(format!("{ours} would be written as {theirs}, which imports as {back}")));
        }
        Ok(theirs)
    }
}

/// `name` through every rule of `remapper`, as `KeyRemapper::remap` renames a tensor.
fn rename(remapper: &KeyRemapper, name: &str) -> String {
    let mut name = name.to_string();
    for (pattern, replacement) in &remapper.patterns {
        if pattern.is_match(&name) {
            name = pattern.replace_all(&name, replacement.as_str()).into_owned();
        }
    }
    name
}

/// A piece of an import pattern: literal text or a capture group (its pattern kept in order
/// beside the pieces).
enum Piece {
    Text(char),
    Group,
}

/// A piece of an import replacement: literal text or a capture group's number (1-based).
enum Part {
    Text(char),
    Group(usize),
}

/// One import rename run backwards:
/// `^body\.(stage[123])\.(\d+)\.0\.` → `backbone.${1}.${2}.spatial.conv.` becomes
/// `^backbone\.(stage[123])\.(\d+)\.spatial\.conv\.` → `body.${1}.${2}.0.`.
///
/// The import's patterns are literal text, a leading `^` and capture groups, each group used
/// exactly once in the replacement; anything else (a wildcard outside a group, a group the
/// replacement drops) loses what the inverse would need, and is an error. A rename to nothing
/// (the `module.` prefix that `nn.DataParallel` adds) only widens what the import accepts: it
/// has no inverse (`None`).
fn invert_rule(pattern: &str, replacement: &str) -> Result<Option<(String, String)>, String> {
    if replacement.is_empty() {
        return Ok(None);
    }
    let fail = |why: &str| Err(format!("rule {pattern:?} → {replacement:?}: {why}"));
    let (anchored, body) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let mut pieces = Vec::new();
    let mut groups = Vec::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) if escaped.is_ascii_punctuation() => pieces.push(Piece::Text(escaped)),
                _ => return fail("an escape other than punctuation outside a group"),
            },
            '(' => {
                let mut group = String::new();
                loop {
                    match chars.next() {
                        Some(')') => break,
                        Some('(') | None => return fail("a nested or unclosed group"),
                        Some('\\') => {
                            group.push('\\');
                            group.extend(chars.next());
                        }
                        Some(other) => group.push(other),
                    }
                }
                if group.starts_with('?') {
                    return fail("a group that captures nothing");
                }
                groups.push(group);
                pieces.push(Piece::Group);
            }
            '.' | '^' | '$' | '*' | '+' | '?' | ')' | '[' | ']' | '{' | '}' | '|' => {
                return fail("a wildcard outside a group");
            }
            other => pieces.push(Piece::Text(other)),
        }
    }
    let mut parts = Vec::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            parts.push(Part::Text(c));
            continue;
        }
        if chars.next_if_eq(&'$').is_some() {
            parts.push(Part::Text('$'));
            continue;
        }
        if chars.next_if_eq(&'{').is_none() {
            return fail("a group reference other than ${N}");
        }
        let digits: String = std::iter::from_fn(|| chars.next_if(char::is_ascii_digit)).collect();
        match (chars.next(), digits.parse::<usize>()) {
            (Some('}'), Ok(n)) if (1..=groups.len()).contains(&n) => parts.push(Part::Group(n)),
            _ => return fail("a reference to a group the pattern does not have"),
        }
    }
    // The inverse's groups are the replacement's references, in their order.
    let references: Vec<usize> =
        parts.iter().filter_map(|p| if let Part::Group(n) = p { Some(*n) } else { None }).collect();
    for n in 1..=groups.len() {
        if references.iter().filter(|&&r| r == n).count() != 1 {
            return fail("a group the replacement does not use exactly once");
        }
    }
    let mut inverse_pattern = String::from(if anchored { "^" } else { "" });
    for part in &parts {
        match part {
            Part::Text(c) => {
                if "\\.+*?()|[]{}^$#&-~".contains(*c) {
                    inverse_pattern.push('\\');
                }
                inverse_pattern.push(*c);
            }
            Part::Group(n) => inverse_pattern.push_str(&format!("({})", groups[n - 1])),
        }
    }
    let mut inverse_replacement = String::new();
    let mut group = 0;
    for piece in &pieces {
        match piece {
            Piece::Text('$') => inverse_replacement.push_str("$$"),
            Piece::Text(c) => inverse_replacement.push(*c),
            Piece::Group => {
                group += 1;
                let position = references.iter().position(|&r| r == group).unwrap_or_else(|| {
                    unreachable!("every group is referenced exactly once (checked above)");
                });
                inverse_replacement.push_str(&format!("${{{}}}", position + 1));
            }
        }
    }
    Ok(Some((inverse_pattern, inverse_replacement)))
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::*;
    use crate::model::PRESETS;
    use crate::test_support::assets;

    #[test]
    fn an_import_rule_runs_backwards() {
        let inverse = invert_rule(r"^body\.(stage[123])\.(\d+)\.0\.", "backbone.${1}.${2}.spatial.conv.").unwrap();
        assert_eq!(
            inverse,
            Some((r"^backbone\.(stage[123])\.(\d+)\.spatial\.conv\.".into(), "body.${1}.${2}.0.".into()))
        );
        // Groups swapped by the replacement come back in their own order.
        let swapped = invert_rule(r"^a\.(\d+)\.b\.(\d+)\.", "x.${2}.${1}.").unwrap();
        assert_eq!(swapped, Some((r"^x\.(\d+)\.(\d+)\.".into(), "a.${2}.b.${1}.".into())));
        let unanchored = invert_rule(r"\.downsample\.0\.", ".downsample.conv.").unwrap();
        assert_eq!(unanchored, Some((r"\.downsample\.conv\.".into(), ".downsample.0.".into())));
    }

    #[test]
    fn a_rule_that_drops_information_cannot_run_backwards() {
        assert!(invert_rule(r"^body\..*\.0\.", "backbone.").unwrap_err().contains("wildcard"));
        assert!(invert_rule(r"^a\.(\d+)\.", "b.").unwrap_err().contains("exactly once"));
        assert!(invert_rule(r"^a\.(\d+)\.", "b.$1.").unwrap_err().contains("${N}"));
        assert!(invert_rule(r"^a\.(\d+)\.", "b.${2}.").unwrap_err().contains("does not have"));
        // Dropping a prefix only widens what the import accepts.
        assert_eq!(invert_rule(r"^module\.", ""), Ok(None));
    }

    #[test]
    fn every_pytorch_preset_exports_under_names_that_import_back() {
        let device = Device::flex();
        for name in PRESETS {
            let config = RetinaFaceConfig::preset(name).unwrap();
            if !has_pytorch_layout(&config) {
                continue;
            }
            // `pytorch_name` itself checks that each name imports back to its module path.
            let tensors = state_dict(&RetinaFace::new(&config, &device), TensorNames::Pytorch)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            for tensor in &tensors {
                let top = tensor.name.split('.').next().unwrap();
                assert!(
                    ["body", "fpn", "ssh1", "ssh2", "ssh3", "ClassHead", "BboxHead", "LandmarkHead"].contains(&top),
                    "{name}: {} is not a Pytorch_Retinaface name",
                    tensor.name
                );
            }
        }
    }

    #[test]
    fn only_the_pytorch_retinaface_presets_have_pytorch_names() {
        let pytorch: Vec<&str> = PRESETS
            .into_iter()
            .filter(|name| TensorNames::for_config(&RetinaFaceConfig::preset(name).unwrap()) == TensorNames::Pytorch)
            .collect();
        assert_eq!(pytorch, ["pytorch-retinaface-r50", "pytorch-retinaface-mnet", "fd1mb-mnet"]);
    }

    #[test]
    fn a_report_preset_refuses_pytorch_names_and_says_what_to_use() {
        let config = RetinaFaceConfig::preset("seed-full").unwrap().shrunk(0.125);
        let model = RetinaFace::new(&config, &Device::flex());
        let err = state_dict(&model, TensorNames::Pytorch).unwrap_err();
        assert!(matches!(err, ExportError::NoPytorchLayout { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("seed-full") && message.contains("P2–P6") && message.contains("cascade"), "{message}");
        assert!(message.contains("--format safetensors"), "{message}");
    }

    #[test]
    fn own_names_are_module_paths_with_batch_norm_in_pytorch_terms() {
        let config = RetinaFaceConfig::preset("paper-r50").unwrap().shrunk(0.125);
        let tensors = state_dict(&RetinaFace::new(&config, &Device::flex()), TensorNames::Facestudio).unwrap();
        let names: BTreeSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        for expected in [
            "backbone.conv1.weight",
            "backbone.bn1.weight",
            "backbone.bn1.bias",
            "backbone.bn1.running_mean",
            "backbone.bn1.running_var",
            "backbone.bn1.num_batches_tracked",
            "backbone.layer1.0.downsample.conv.weight",
            "fpn.lateral.0.conv.weight",
            "fpn.lateral.3.conv.weight",
            "fpn.merge.2.bn.running_var",
            "fpn.c6.bn.weight",
            "context.4.conv3x3.offset.weight",
            "context.4.conv3x3.offset.bias",
            "context.4.conv3x3.conv.weight",
            "context.4.conv7x7_3.bn.bias",
            "heads.0.class.4.weight",
            "heads.1.landmark.4.bias",
        ] {
            assert!(names.contains(expected), "{expected} missing from the {} names", names.len());
        }
        assert!(!names.iter().any(|n| n.ends_with("gamma") || n.ends_with("beta")), "burn's BatchNorm names left");
        let counter = tensors.iter().find(|t| t.name == "backbone.bn1.num_batches_tracked").unwrap();
        assert_eq!((counter.dtype, counter.shape.len(), counter.data.len()), (ElementType::I64, 0, 8));
    }

    /// The shared checkpoint's list of names and shapes (`assets/weights/names_shapes.txt`, in the
    /// checkpoint's order) is exactly what fd1mb-mnet exports, in the same order.
    #[test]
    fn fd1mb_exports_the_names_shapes_and_order_of_the_published_checkpoint() {
        let Some(assets) = assets("fd1mb_exports_the_names_shapes_and_order_of_the_published_checkpoint") else {
            return;
        };
        let listing = std::fs::read_to_string(assets.join("weights/names_shapes.txt")).unwrap();
        let expected: Vec<String> = listing.lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect();
        assert_eq!(expected.len(), 300);
        let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
        let tensors = state_dict(&RetinaFace::new(&config, &Device::flex()), TensorNames::Pytorch).unwrap();
        let ours: Vec<String> = tensors
            .iter()
            .map(|t| {
                let dtype = match t.dtype {
                    ElementType::F32 => "float32",
                    ElementType::I64 => "int64",
                };
                let shape = t.shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
                format!("{}\t{dtype}\t[{shape}]", t.name)
            })
            .collect();
        assert_eq!(ours, expected);
    }
}
