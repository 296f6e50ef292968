//! Models leave the studio: a `.pth` or safetensors export read back is the same network, the
//! shared checkpoint re-exported is the checkpoint, the report's presets refuse `.pth` with a
//! pointer to safetensors, and `facestudio export` end to end.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use burn::prelude::*;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::pytorch_reader::{DType as TorchDType, PytorchReader};
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use facestudio::model::export::pth::write_pth;
use facestudio::model::export::safetensors::{CONFIG_KEY, NAMES_KEY, write_safetensors};
use facestudio::model::export::{ExportError, TensorNames};
use facestudio::model::{RetinaFace, RetinaFaceConfig, import_checkpoint, save_model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The report's presets and `tiny` (P2–P6 pyramids, no context, deformable convolutions, the
/// cascade): no PyTorch code builds them. Shrunk: the layout, not the width, decides.
const OWN_NAMES_PRESETS: [&str; 6] =
    ["seed-baseline", "seed-context", "seed-context-landmarks", "seed-full", "paper-r50", "tiny"];

fn config(preset: &str) -> RetinaFaceConfig {
    RetinaFaceConfig::preset(preset).unwrap().shrunk(0.125)
}

/// A network with random weights and random BatchNorm statistics: fresh BatchNorms are the
/// identity (mean 0, variance 1, γ 1, β 0), which would hide a statistic written under another
/// one's name.
fn random_model(config: &RetinaFaceConfig, seed: u64) -> RetinaFace {
    let mut model = RetinaFace::new(config, &Device::flex());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let randomised: Vec<PackTensor> = model
        .collect(None, None, false)
        .into_iter()
        .filter_map(|tensor| {
            let range = match tensor.name.rsplit('.').next()? {
                "running_var" => 0.5..2.0,
                "gamma" => 0.5..1.5,
                "running_mean" | "beta" => -0.5..0.5,
                _ => return None,
            };
            let values: Vec<f32> = (0..tensor.shape.num_elements()).map(|_| rng.random_range(range.clone())).collect();
            Some(PackTensor::new(
                tensor.name.clone(),
                burn::tensor::DType::F32,
                tensor.shape.clone(),
                tensor.param_id,
                burn::tensor::Bytes::from_elems(values),
            ))
        })
        .collect();
    assert!(!randomised.is_empty());
    let result = model.apply(randomised, None, None, false);
    assert!(result.errors.is_empty() && result.unused.is_empty(), "{result}");
    model
}

/// Every output of every head stage on one random 64×48 input (not a multiple of 32: the
/// pyramid's rounding is exercised too), in inference mode.
fn outputs(model: &RetinaFace) -> Vec<Vec<f32>> {
    let device = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let data: Vec<f32> = (0..3 * 48 * 64).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x = Tensor::<4>::from_data(TensorData::new(data, [1, 3, 48, 64]), &device);
    let out = model.clone().valid().forward(x);
    let mut all = Vec::new();
    for stage in out.stages {
        all.push(stage.logits.try_into_vec_as::<f32>().unwrap());
        all.push(stage.boxes.try_into_vec_as::<f32>().unwrap());
        if let Some(landmarks) = stage.landmarks {
            all.push(landmarks.try_into_vec_as::<f32>().unwrap());
        }
    }
    all
}

/// The same weights run through the same kernels: the outputs are bit-identical.
fn assert_same_outputs(a: &RetinaFace, b: &RetinaFace, what: &str) {
    let (a, b) = (outputs(a), outputs(b));
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "{what}");
    }
}

/// Pytorch_Retinaface's networks; the ResNet-50 shrunk (its names are the width's business not).
const PYTORCH_PRESETS: [&str; 3] = ["pytorch-retinaface-mnet", "fd1mb-mnet", "pytorch-retinaface-r50"];

#[test]
fn pth_export_imports_back_as_the_same_network() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, preset) in PYTORCH_PRESETS.into_iter().enumerate() {
        let config = config(preset);
        let model = random_model(&config, seed as u64);
        let path = dir.path().join(format!("{preset}.pth"));
        write_pth(&model, &path).unwrap_or_else(|e| panic!("{preset}: {e}"));
        let imported = import_checkpoint(&path, &config, &Device::flex()).unwrap_or_else(|e| panic!("{preset}: {e}"));
        assert_same_outputs(&model, &imported, preset);
    }
}

#[test]
fn safetensors_export_imports_back_as_the_same_network() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, preset) in PYTORCH_PRESETS.into_iter().enumerate() {
        let config = config(preset);
        let model = random_model(&config, 10 + seed as u64);
        let path = dir.path().join(format!("{preset}.safetensors"));
        assert_eq!(write_safetensors(&model, &path).unwrap(), TensorNames::Pytorch, "{preset}");
        let imported = import_checkpoint(&path, &config, &Device::flex()).unwrap_or_else(|e| panic!("{preset}: {e}"));
        assert_same_outputs(&model, &imported, preset);
    }
}

/// The header of a safetensors file: its `__metadata__`.
fn safetensors_metadata(path: &Path) -> BTreeMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    header.metadata().clone().unwrap().into_iter().collect()
}

#[test]
fn report_presets_export_safetensors_under_their_own_names_and_load_back() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, preset) in OWN_NAMES_PRESETS.into_iter().enumerate() {
        let config = config(preset);
        let model = random_model(&config, 20 + seed as u64);
        let path = dir.path().join(format!("{preset}.safetensors"));
        assert_eq!(write_safetensors(&model, &path).unwrap(), TensorNames::Facestudio, "{preset}");
        let metadata = safetensors_metadata(&path);
        assert_eq!(metadata[NAMES_KEY], "facestudio", "{preset}");
        assert_eq!(metadata["format"], "pt", "{preset}");
        let stored: RetinaFaceConfig = serde_json::from_str(&metadata[CONFIG_KEY]).unwrap();
        assert_eq!(stored, config, "{preset}");
        // What a burn user does with it: the config from the metadata, the module paths as named.
        let mut loaded = RetinaFace::new(&stored, &Device::flex());
        let mut store = SafetensorsStore::from_file(&path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .skip_enum_variants(true)
            .allow_partial(false);
        let result = loaded.load_from(&mut store).unwrap_or_else(|e| panic!("{preset}: {e}"));
        assert!(result.missing.is_empty() && result.errors.is_empty(), "{preset}: {result}");
        assert!(result.unused.iter().all(|name| name.ends_with(".num_batches_tracked")), "{preset}: {result}");
        assert_same_outputs(&model, &loaded, preset);
    }
}

#[test]
fn report_presets_refuse_pth_and_point_to_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    for preset in OWN_NAMES_PRESETS {
        let model = RetinaFace::new(&config(preset), &Device::flex());
        let path = dir.path().join(format!("{preset}.pth"));
        let err = write_pth(&model, &path).unwrap_err();
        assert!(matches!(err, ExportError::NoPytorchLayout { .. }), "{preset}: {err}");
        let message = err.to_string();
        assert!(message.contains(preset) && message.contains("--format safetensors"), "{message}");
        assert!(!path.exists(), "{preset}: nothing is written");
    }
}

/// Every tensor of a PyTorch checkpoint: name → (dtype, shape, bytes).
fn read_pth(path: &Path) -> BTreeMap<String, (TorchDType, Vec<usize>, Vec<u8>)> {
    let reader = PytorchReader::new(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .tensors()
        .iter()
        .map(|(name, tensor)| (name.clone(), (tensor.dtype(), tensor.shape().to_vec(), tensor.read().unwrap())))
        .collect()
}

/// The published checkpoint imported and exported again holds the same 300 tensors, bit for
/// bit, except the batch counters: burn keeps none, so they are written as 0 (PyTorch reads
/// them only to train with `momentum=None`).
#[test]
fn the_shared_checkpoint_re_exported_is_the_checkpoint() {
    let Some(assets) = common::assets("the_shared_checkpoint_re_exported_is_the_checkpoint") else { return };
    let original = assets.join("weights/mobilenet0.25_Final.pth");
    let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
    let model = import_checkpoint(&original, &config, &Device::flex()).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("again.pth");
    write_pth(&model, &exported).unwrap();
    let (theirs, ours) = (read_pth(&original), read_pth(&exported));
    assert_eq!(theirs.len(), 300);
    assert_eq!(theirs.keys().collect::<Vec<_>>(), ours.keys().collect::<Vec<_>>());
    let mut counters = 0;
    for (name, (dtype, shape, bytes)) in &theirs {
        let (our_dtype, our_shape, our_bytes) = &ours[name];
        assert_eq!((dtype, shape), (our_dtype, our_shape), "{name}");
        if name.ends_with("num_batches_tracked") {
            assert_eq!(*dtype, TorchDType::I64, "{name}");
            assert_eq!(our_bytes, &0i64.to_le_bytes(), "{name}");
            counters += 1;
        } else {
            assert_eq!(bytes, our_bytes, "{name}");
        }
    }
    assert_eq!(counters, 47, "one counter per BatchNorm");
    // And the safetensors export holds the same names as the shared safetensors file.
    let st = dir.path().join("again.safetensors");
    write_safetensors(&model, &st).unwrap();
    let names = |path: &Path| -> BTreeSet<String> {
        let bytes = std::fs::read(path).unwrap();
        safetensors::SafeTensors::deserialize(&bytes).unwrap().names().into_iter().map(str::to_string).collect()
    };
    assert_eq!(names(&st), names(&assets.join("weights/mobilenet0.25_Final.safetensors")));
}

fn facestudio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facestudio")).args(args).output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn export_writes_every_format_from_a_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
    let model = random_model(&config, 30);
    let model_file = dir.path().join("fd1mb.bpk");
    save_model(&model, &model_file).unwrap();
    for (format, file) in [("pth", "fd1mb.pth"), ("safetensors", "fd1mb.safetensors")] {
        let out = dir.path().join(file);
        let run = facestudio(&["export", text(&model_file), "--format", format, "--out", text(&out)]);
        assert!(run.status.success(), "{format}: {}", stderr(&run));
        assert!(String::from_utf8_lossy(&run.stdout).contains("wrote"), "{format}");
        let imported = import_checkpoint(&out, &config, &Device::flex()).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_same_outputs(&model, &imported, format);
    }
    for extra in [&[][..], &["--static", "64x48"][..], &["--static", "64x48", "--with-priors"][..]] {
        let out = dir.path().join("fd1mb.onnx");
        let mut args = vec!["export", text(&model_file), "--format", "onnx", "--out", text(&out)];
        args.extend(extra);
        let run = facestudio(&args);
        assert!(run.status.success(), "onnx {extra:?}: {}", stderr(&run));
        assert!(std::fs::metadata(&out).unwrap().len() > 100_000, "onnx {extra:?}: the weights are inside");
        std::fs::remove_file(&out).unwrap();
    }
}

#[test]
fn export_of_a_checkpoint_needs_its_preset() {
    let dir = tempfile::tempdir().unwrap();
    let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
    let model = random_model(&config, 40);
    let checkpoint = dir.path().join("trained.pth");
    write_pth(&model, &checkpoint).unwrap();
    let out = dir.path().join("trained.safetensors");
    let without = facestudio(&["export", text(&checkpoint), "--format", "safetensors", "--out", text(&out)]);
    assert!(!without.status.success());
    assert!(stderr(&without).contains("--preset"), "{}", stderr(&without));
    assert!(!out.exists());
    let with = facestudio(&[
        "export",
        text(&checkpoint),
        "--preset",
        "fd1mb-mnet",
        "--format",
        "safetensors",
        "--out",
        text(&out),
    ]);
    assert!(with.status.success(), "{}", stderr(&with));
    let imported = import_checkpoint(&out, &config, &Device::flex()).unwrap();
    assert_same_outputs(&model, &imported, "safetensors of a checkpoint");
}

/// Bad arguments are refused before any file is read (the model file does not even exist).
#[test]
fn export_refuses_bad_arguments_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.file");
    let base = ["export", "missing.bpk", "--out", text(&out)];
    for (extra, needle) in [
        (&["--format", "onnx", "--with-priors"][..], "--with-priors needs --static"),
        (&["--format", "tflite"][..], "possible values: onnx, pth, safetensors"),
        (&["--format", "pth", "--static", "64x48"][..], "need --format onnx"),
        (&["--format", "onnx", "--static", "0x48"][..], "WIDTHxHEIGHT"),
        (&["--format", "pth", "--preset", "resnet"][..], "fd1mb-mnet"),
    ] {
        let mut args = base.to_vec();
        args.extend(extra);
        let run = facestudio(&args);
        assert!(!run.status.success(), "{extra:?}");
        assert!(stderr(&run).contains(needle), "{extra:?}: {}", stderr(&run));
        assert!(!stderr(&run).contains("missing.bpk"), "{extra:?}: refused before reading: {}", stderr(&run));
    }
    assert!(!out.exists());
}

/// `--out` naming the model itself, under another spelling, is refused and the model stays.
#[test]
fn export_never_replaces_the_model_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let model_file = dir.path().join("fd1mb.safetensors");
    save_model(&RetinaFace::new(&config("fd1mb-mnet"), &Device::flex()), &dir.path().join("fd1mb.bpk")).unwrap();
    let first = facestudio(&[
        "export",
        text(&dir.path().join("fd1mb.bpk")),
        "--format",
        "safetensors",
        "--out",
        text(&model_file),
    ]);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = std::fs::read(&model_file).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let again = dir.path().join("sub/../fd1mb.safetensors");
    let run = facestudio(&[
        "export",
        text(&model_file),
        "--preset",
        "fd1mb-mnet",
        "--format",
        "safetensors",
        "--out",
        text(&again),
    ]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("would replace the model it reads"), "{}", stderr(&run));
    assert_eq!(std::fs::read(&model_file).unwrap(), before);
}

#[test]
fn export_of_a_report_preset_to_pth_says_to_use_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let model_file = dir.path().join("seed-full.bpk");
    save_model(&RetinaFace::new(&config("seed-full"), &Device::flex()), &model_file).unwrap();
    let pth = dir.path().join("seed-full.pth");
    let run = facestudio(&["export", text(&model_file), "--format", "pth", "--out", text(&pth)]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("--format safetensors"), "{}", stderr(&run));
    assert!(!pth.exists());
    let st = dir.path().join("seed-full.safetensors");
    let run = facestudio(&["export", text(&model_file), "--format", "safetensors", "--out", text(&st)]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("facestudio names"));
    assert_eq!(safetensors_metadata(&st)[NAMES_KEY], "facestudio");
}
