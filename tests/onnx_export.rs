//! The ONNX export against burn: every exported graph, run by tract (a pure-Rust ONNX runtime),
//! gives the rows `RetinaFace::forward` gives (last stage's boxes, softmaxed logits and
//! landmarks, the cascade's first-stage boxes) and, with priors, the boxes the detector decodes.

mod common;

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::softmax;
use facestudio::detect::{InputSize, load_image, preprocess};
use facestudio::geometry::{Anchor, decode_box};
use facestudio::model::export::onnx::{OnnxExportError, OnnxOptions, onnx_model_bytes, write_onnx};
use facestudio::model::{PRESETS, RetinaFace, RetinaFaceConfig, import_checkpoint};
use onnx_protobuf::tensor_shape_proto::dimension;
use onnx_protobuf::{Message, ModelProto, type_proto};
use tract_onnx::prelude::{
    Datum, Framework, InferenceFact, InferenceModelExt, IntoRunnable, TValue, TVec, Tensor as TractTensor, tvec,
};

/// One output: dims and values, row-major.
type Output = (Vec<usize>, Vec<f32>);

/// The graph outputs' names, in order.
fn output_names(bytes: &[u8]) -> Vec<String> {
    let proto = ModelProto::parse_from_bytes(bytes).expect("a ModelProto");
    proto.graph.output.iter().map(|o| o.name.clone()).collect()
}

/// The graph input's dims, a number or a name each.
fn input_dims(bytes: &[u8]) -> Vec<String> {
    let proto = ModelProto::parse_from_bytes(bytes).expect("a ModelProto");
    let Some(type_proto::Value::TensorType(t)) = &proto.graph.input[0].type_.value else { panic!("a tensor input") };
    t.shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(dimension::Value::DimValue(n)) => n.to_string(),
            Some(dimension::Value::DimParam(s)) => s.clone(),
            _ => "?".to_string(),
        })
        .collect()
}

/// The graph `bytes` run by tract on `input` of `[n, 3, h, w]` (a dynamic graph gets the size
/// here), every output by name.
fn run_onnx(bytes: &[u8], input: &[f32], shape: [usize; 4]) -> HashMap<String, Output> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the graph")
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), tvec!(shape[0], shape[1], shape[2], shape[3])))
        .unwrap()
        .into_optimized()
        .expect("tract types and optimises the graph")
        .into_runnable()
        .unwrap();
    let input: TVec<TValue> = tvec!(TractTensor::from_shape::<f32>(&shape, input).unwrap().into());
    let outputs = model.run(input).expect("tract runs the graph");
    output_names(bytes)
        .into_iter()
        .zip(outputs)
        .map(|(name, value)| {
            let view = value.to_plain_array_view::<f32>().unwrap();
            (name, (view.shape().to_vec(), view.iter().copied().collect()))
        })
        .collect()
}

/// With `FACESTUDIO_ONNX_DUMP` set to a folder: the graph, its input and the outputs it must give
/// written there (`NAME.onnx`, `NAME.input.npy`, `NAME.OUTPUT.npy`), to check the file in other
/// ONNX runtimes.
fn dump(name: &str, bytes: &[u8], input: &[f32], shape: [usize; 4], expected: &HashMap<String, Output>) {
    use npyz::WriterBuilder;
    let Some(dir) = std::env::var_os("FACESTUDIO_ONNX_DUMP").map(std::path::PathBuf::from) else { return };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.onnx")), bytes).unwrap();
    let npy = |file: String, dims: &[usize], values: &[f32]| {
        let dims: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        let mut out = std::fs::File::create(dir.join(file)).unwrap();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&dims).writer(&mut out).begin_nd().unwrap();
        w.extend(values.iter().copied()).unwrap();
        w.finish().unwrap();
    };
    npy(format!("{name}.input.npy"), &shape, input);
    for (output, (dims, values)) in expected {
        npy(format!("{name}.{output}.npy"), dims, values);
    }
}

fn host(t: Tensor<3>) -> Output {
    (t.dims().to_vec(), t.try_into_vec_as::<f32>().unwrap())
}

/// What the graph's outputs must be: burn's forward pass, flattened the same way.
fn burn_outputs(model: &RetinaFace, input: &[f32], shape: [usize; 4]) -> HashMap<String, Output> {
    let x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), shape), &Device::flex());
    let out = model.forward(x);
    let last = out.last();
    let mut expected = HashMap::from([
        ("loc".to_string(), host(last.boxes.clone())),
        ("conf".to_string(), host(softmax(last.logits.clone(), 2))),
    ]);
    if let Some(l) = &last.landmarks {
        expected.insert("landms".to_string(), host(l.clone()));
    }
    for (k, stage) in out.stages[..out.stages.len() - 1].iter().enumerate() {
        expected.insert(format!("loc_stage{}", k + 1), host(stage.boxes.clone()));
    }
    expected
}

/// `got` equals `expected` to `tolerance` relative to the largest expected value (at least 1, so
/// small outputs such as probabilities are held to `tolerance` absolute).
fn assert_close(what: &str, expected: &Output, got: &Output, tolerance: f32) {
    assert_eq!(expected.0, got.0, "{what}: shape");
    let scale = expected.1.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = expected.1.iter().zip(&got.1).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    println!("{what}: max difference {diff:.2e} (values up to {scale:.2e})");
    assert!(diff <= tolerance * scale, "{what}: max difference {diff} (values up to {scale})");
}

fn assert_outputs_match(what: &str, expected: &HashMap<String, Output>, got: &HashMap<String, Output>, tolerance: f32) {
    let mut names: Vec<&String> = expected.keys().collect();
    names.sort();
    for name in names {
        let got = got.get(name).unwrap_or_else(|| panic!("{what}: the graph has no output {name}"));
        assert_close(&format!("{what}, {name}"), &expected[name], got, tolerance);
    }
}

/// Folding the batch norms reorders float rounding: shallow networks stay within ~3e-5 of their
/// largest output. ResNet-50's bottlenecks with batch statistics of random data (some variances
/// tiny, so some scales large) reach ~3e-4, as in the inference network's own tests.
fn tolerance(preset: &str) -> f32 {
    if preset.contains("r50") || preset.starts_with("seed") { 5e-4 } else { 1e-4 }
}

/// Sets every BatchNorm's γ and β to random values (the running statistics come from
/// `recompute_batch_norm`), so that folding them into the convolutions is exercised.
struct RandomAffine {
    path: Vec<(String, String)>,
}

impl ModuleMapper for RandomAffine {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let range = match self.path.last() {
            Some((field, container)) if container == "Struct:BatchNorm" && field == "gamma" => (0.6, 1.4),
            Some((field, container)) if container == "Struct:BatchNorm" && field == "beta" => (-0.3, 0.3),
            _ => return param,
        };
        param.map(|t| Tensor::random(t.shape(), Distribution::Uniform(range.0, range.1), &t.device()))
    }
}

/// `config` with random weights, random γ and β and the running statistics of two random
/// batches of `width`×`height`: batch norms that matter, as a trained model has.
fn random_model(config: &RetinaFaceConfig, width: usize, height: usize) -> RetinaFace {
    let device = Device::flex().autodiff();
    device.seed(7);
    let mut model = RetinaFace::new(config, &device).map(&mut RandomAffine { path: Vec::new() });
    let batch = || Tensor::<4>::random([2, 3, height, width], Distribution::Uniform(-1.0, 1.0), &device);
    model.recompute_batch_norm([batch(), batch()]);
    model.valid()
}

fn input(shape: [usize; 4], seed: u64) -> Vec<f32> {
    let device = Device::flex();
    device.seed(seed);
    Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &device).try_into_vec_as::<f32>().unwrap()
}

fn tiny() -> RetinaFace {
    random_model(&RetinaFaceConfig::preset("tiny").unwrap(), 96, 64)
}

#[test]
fn the_shared_checkpoint_exports_with_the_outputs_of_burn() {
    let Some(assets) = common::assets("the_shared_checkpoint_exports_with_the_outputs_of_burn") else {
        return;
    };
    let device = Device::flex();
    let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
    let weights = assets.join("weights").join("mobilenet0.25_Final.pth");
    let model = import_checkpoint(&weights, &config, &device).unwrap_or_else(|e| panic!("{e}"));
    // The photo as the detector feeds it (1024×624), normalised as the preset says.
    let photo = load_image(&assets.join("photos").join("test.jpg")).unwrap();
    let net_input = preprocess(&photo, InputSize::Original, &config.input);
    let shape = [1, 3, net_input.height as usize, net_input.width as usize];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fd1mb.onnx");
    write_onnx(&model, &OnnxOptions::default(), &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(output_names(&bytes), ["loc", "conf", "landms"]);
    let expected = burn_outputs(&model, &net_input.data, shape);
    dump("fd1mb", &bytes, &net_input.data, shape, &expected);
    let got = run_onnx(&bytes, &net_input.data, shape);
    assert_eq!(got["loc"].0, [1, config.anchors.count(shape[3] as u32, shape[2] as u32), 4]);
    // A trained network on a real photo: the face probabilities span [0, 1].
    let faces = got["conf"].1.chunks(2).filter(|c| c[1] > 0.5).count();
    assert!(faces > 0, "the checkpoint finds faces in test.jpg");
    assert_outputs_match("fd1mb-mnet checkpoint", &expected, &got, 1e-4);
}

#[test]
fn a_cascade_resnet_with_landmarks_and_folded_batch_norms_matches_burn() {
    let model = tiny();
    let bytes = onnx_model_bytes(&model, &OnnxOptions::default()).unwrap();
    assert_eq!(input_dims(&bytes), ["batch", "3", "height", "width"]);
    assert_eq!(output_names(&bytes), ["loc", "conf", "landms", "loc_stage1"]);
    // A batch of two, 96 wide and 64 high.
    let shape = [2, 3, 64, 96];
    let x = input(shape, 11);
    let expected = burn_outputs(&model, &x, shape);
    assert_ne!(expected["loc"], expected["loc_stage1"], "the two stages have their own weights");
    dump("tiny", &bytes, &x, shape, &expected);
    assert_outputs_match("tiny", &expected, &run_onnx(&bytes, &x, shape), tolerance("tiny"));
}

#[test]
fn one_dynamic_graph_runs_at_two_input_sizes() {
    let model = tiny();
    let bytes = onnx_model_bytes(&model, &OnnxOptions::default()).unwrap();
    // 96 wide × 64 high, then 128 × 128: different anchor counts from the same graph, and sizes
    // that are not multiples of the coarsest stride (ceil(64 / 32) = 2, ceil(96 / 32) = 3).
    let mut rows = Vec::new();
    for (k, shape) in [[1, 3, 64, 96], [1, 3, 128, 128], [1, 3, 72, 40]].into_iter().enumerate() {
        let x = input(shape, 20 + k as u64);
        let got = run_onnx(&bytes, &x, shape);
        let what = format!("tiny at {}×{}", shape[3], shape[2]);
        assert_outputs_match(&what, &burn_outputs(&model, &x, shape), &got, tolerance("tiny"));
        rows.push(got["loc"].0[1]);
    }
    let config = &model.config;
    assert_eq!(rows, [config.anchors.count(96, 64), config.anchors.count(128, 128), config.anchors.count(40, 72)]);
}

/// The boxes the detector decodes (`detect::Candidates::from_raw`): each stage's regressions
/// against the previous stage's boxes, the first against the anchors.
fn decoded(model: &RetinaFace, expected: &HashMap<String, Output>, width: u32, height: u32) -> Output {
    let anchors = model.config.anchors.generate(width, height);
    let v = model.config.variance;
    let mut stages: Vec<&Vec<f32>> =
        (1..model.config.stages()).map(|k| &expected[&format!("loc_stage{k}")].1).collect();
    stages.push(&expected["loc"].1);
    let dims = expected["loc"].0.clone();
    let rows = dims[0] * dims[1];
    let values = (0..rows)
        .flat_map(|r| {
            let mut anchor = anchors[r % anchors.len()];
            let mut corners = [0.0; 4];
            for (s, loc) in stages.iter().enumerate() {
                if s > 0 {
                    anchor = Anchor::from_corners(corners);
                }
                corners = decode_box(loc[4 * r..4 * r + 4].try_into().unwrap(), &anchor, v);
            }
            corners
        })
        .collect();
    (dims, values)
}

#[test]
fn a_static_graph_fixes_the_size_and_decodes_boxes_with_its_priors() {
    let model = tiny();
    let (width, height) = (80, 48);
    let shape = [1, 3, height, width];
    let x = input(shape, 31);
    let expected = burn_outputs(&model, &x, shape);
    let anchors = model.config.anchors.count(width as u32, height as u32);
    for with_priors in [false, true] {
        let options = OnnxOptions { static_size: Some((width, height)), with_priors };
        let bytes = onnx_model_bytes(&model, &options).unwrap();
        assert_eq!(input_dims(&bytes), ["batch", "3", "48", "80"]);
        let got = run_onnx(&bytes, &x, shape);
        assert_outputs_match(&format!("tiny static, priors {with_priors}"), &expected, &got, tolerance("tiny"));
        assert_eq!(got.contains_key("boxes"), with_priors);
        if with_priors {
            let want = decoded(&model, &expected, width as u32, height as u32);
            let mut with_boxes = expected.clone();
            with_boxes.insert("boxes".to_string(), want.clone());
            dump("tiny_static_priors", &bytes, &x, shape, &with_boxes);
            assert_eq!(want.0, [1, anchors, 4]);
            assert_close("boxes through the cascade", &want, &got["boxes"], 1e-4);
        }
    }
    let err = onnx_model_bytes(&model, &OnnxOptions { static_size: None, with_priors: true }).unwrap_err();
    assert!(matches!(err, OnnxExportError::PriorsNeedStaticSize), "{err}");
}

#[test]
fn the_deformable_preset_is_refused_naming_the_preset_and_the_layer() {
    // paper-r50 at an eighth of its width: the same layers, built in a fraction of the time.
    let config = RetinaFaceConfig::preset("paper-r50").unwrap().shrunk(0.125);
    assert!(config.context.deformable);
    let model = RetinaFace::new(&config, &Device::flex());
    let err = onnx_model_bytes(&model, &OnnxOptions::default()).unwrap_err();
    let OnnxExportError::Unsupported { what } = &err else { panic!("expected Unsupported, got {err}") };
    for part in ["paper-r50", "context.0.conv3x3", "P2", "deformable", "opset 17"] {
        assert!(what.contains(part), "{part:?} missing from: {what}");
    }
}

#[test]
fn every_other_preset_exports_and_matches_burn() {
    // 72×56: no side a multiple of the strides, so the pyramid upsamples odd sizes (P2–P6:
    // 18, 9, 5, 3, 2 columns). ResNet presets at an eighth of their width: the same layers.
    let (width, height) = (72, 56);
    let shape = [1, 3, height, width];
    for preset in PRESETS.into_iter().filter(|p| *p != "paper-r50") {
        let config = RetinaFaceConfig::preset(preset).unwrap().shrunk(0.125);
        let model = random_model(&config, width, height);
        let bytes = onnx_model_bytes(&model, &OnnxOptions::default()).unwrap_or_else(|e| panic!("{preset}: {e}"));
        let x = input(shape, 41);
        let expected = burn_outputs(&model, &x, shape);
        let got = run_onnx(&bytes, &x, shape);
        assert_eq!(got.len(), expected.len(), "{preset}: outputs {:?}", output_names(&bytes));
        assert_outputs_match(preset, &expected, &got, tolerance(preset));
    }
}
