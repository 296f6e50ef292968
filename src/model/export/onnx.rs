//! ONNX export (opset 17): the network as detection runs it, for onnxruntime, TensorRT, OpenCV
//! and every other tool that reads ONNX.
//!
//! The graph takes what [`crate::detect::Detector`] feeds the network: `input` `[N, 3, H, W]`
//! float32, already normalised as the model's [`crate::model::InputNormalization`] says (channel
//! order, scale, mean, std; written in the model's metadata), so there is no normalisation inside.
//! N, H and W are dynamic (`batch`, `height`, `width`) unless [`OnnxOptions::static_size`] fixes
//! H and W. Every BatchNorm is folded into its convolution.
//!
//! The outputs are the last head stage's, as Pytorch_Retinaface's test phase gives them, one row
//! per anchor in the order of `AnchorSpec::generate` (level finest first, then row, column and
//! anchor size), the rows of [`crate::model::RetinaFace::forward`]:
//! - `loc` `[N, A, 4]`: box regressions (variance `config.variance`);
//! - `conf` `[N, A, 2]`: softmax of the class logits (background, face);
//! - `landms` `[N, A, 10]`: landmark regressions, absent without a landmark head;
//! - `loc_stage1` `[N, A, 4]` (cascade only): the first stage's box regressions. In the cascade
//!   the last stage (and its landmarks) regress from the boxes the first stage decodes, not from
//!   the anchors (report, "Cascaded Structure"): decode `loc_stage1` against the anchors, take
//!   the boxes as anchors, then decode `loc` and `landms` against them;
//! - `boxes` `[N, A, 4]` (`with_priors`, static size only): the last stage's boxes decoded in
//!   input pixels, `x1 y1 x2 y2`, through the cascade where there is one, with the anchors of
//!   that size as constants of the graph.
//!
//! Deformable convolutions (the `paper-r50` preset's context modules) have no operator in opset
//! 17: such a model is refused with [`OnnxExportError::Unsupported`].

mod decode;
mod graph;
mod network;

use std::path::{Path, PathBuf};

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::type_proto::{self, Tensor as TensorType};
use onnx_protobuf::{
    GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::{Message, MessageField};

use self::graph::{Attr, GraphBuilder};
use self::network::NetworkWriter;
use crate::model::{RetinaFace, RetinaFaceConfig};

/// The ONNX operator set the graph is written for.
pub const OPSET: i64 = 17;

/// ONNX IR version 8 (ONNX 1.10–1.13), what opset 17 models declare.
const IR_VERSION: i64 = 8;

/// The largest side `static_size` takes: the priors of an 8192×8192 input with the report's
/// anchors are ~270 MB of constants, and a protobuf message cannot exceed 2 GiB.
pub const MAX_STATIC_SIDE: usize = 8192;

/// The graph input's name.
pub const INPUT: &str = "input";

/// How the graph is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OnnxOptions {
    /// `(width, height)` of the input, fixed in the graph; `None`: any size (and batch).
    pub static_size: Option<(usize /*width*/, usize /*height*/)>,
    /// Adds the `boxes` output, decoded with the anchors of `static_size` (only valid with it).
    pub with_priors: bool,
}

/// Why a model cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum OnnxExportError {
    #[error("cannot export to ONNX: {what}")]
    Unsupported { what: String },
    #[error(
        "--with-priors needs --static WxH: the priors are constants of the graph, computed for one \
         input size"
    )]
    PriorsNeedStaticSize,
    #[error("static input size {width}×{height}: each side must be between 1 and {MAX_STATIC_SIDE} pixels")]
    StaticSize { width: usize, height: usize },
    #[error("cannot serialize the ONNX model: {message}")]
    Serialize { message: String },
    #[error("cannot write the ONNX model to {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// A dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Dim {
    Fixed(usize),
    Named(&'static str),
}

/// One graph output: its name and how many values each anchor's row has.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OutputSpec {
    name: String,
    per_anchor: usize,
}

/// The outputs a model exported with `options` has, in the graph's order.
fn output_specs(config: &RetinaFaceConfig, options: &OnnxOptions) -> Vec<OutputSpec> {
    let spec = |name: &str, per_anchor| OutputSpec { name: name.to_string(), per_anchor };
    let mut specs = vec![spec("loc", 4), spec("conf", 2)];
    if config.landmarks {
        specs.push(spec("landms", 10));
    }
    for stage in 1..config.stages() {
        specs.push(spec(&format!("loc_stage{stage}"), 4));
    }
    if options.with_priors {
        specs.push(spec("boxes", 4));
    }
    specs
}

/// The input's dims: `[batch, 3, height, width]`, H and W fixed by a static size.
fn input_dims(options: &OnnxOptions) -> [Dim; 4] {
    match options.static_size {
        Some((width, height)) => [Dim::Named("batch"), Dim::Fixed(3), Dim::Fixed(height), Dim::Fixed(width)],
        None => [Dim::Named("batch"), Dim::Fixed(3), Dim::Named("height"), Dim::Named("width")],
    }
}

/// An output's dims: `[batch, anchors, per_anchor]`, the anchor count known for a static size.
fn output_dims(config: &RetinaFaceConfig, options: &OnnxOptions, per_anchor: usize) -> [Dim; 3] {
    let anchors = match options.static_size {
        Some((width, height)) => Dim::Fixed(config.anchors.count(width as u32, height as u32)),
        None => Dim::Named("anchors"),
    };
    [Dim::Named("batch"), anchors, Dim::Fixed(per_anchor)]
}

/// A float32 tensor value of `dims`.
fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                Dim::Named(s) => dimension::Value::DimParam(s.to_string()),
            }),
            ..Dimension::default()
        })
        .collect();
    let tensor = TensorType {
        elem_type: DataType::FLOAT as i32,
        shape: MessageField::some(TensorShapeProto { dim, ..TensorShapeProto::default() }),
        ..TensorType::default()
    };
    ValueInfoProto {
        name: name.to_string(),
        type_: MessageField::some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

/// The model around a finished graph.
fn model_proto(
    g: GraphBuilder,
    name: &str,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    doc: &str,
    metadata: Vec<(String, String)>,
) -> ModelProto {
    let graph = GraphProto {
        name: name.to_string(),
        node: g.nodes,
        initializer: g.initializers,
        input: inputs,
        output: outputs,
        doc_string: doc.to_string(),
        ..GraphProto::default()
    };
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..OperatorSetIdProto::default()
        }],
        producer_name: "facestudio".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        doc_string: doc.to_string(),
        graph: MessageField::some(graph),
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key, value, ..StringStringEntryProto::default() })
            .collect(),
        ..ModelProto::default()
    }
}

/// Whether the options make a graph (before any model is read: the CLI and the studio refuse a
/// bad size without loading anything).
pub fn check_options(options: &OnnxOptions) -> Result<(), OnnxExportError> {
    if let Some((width, height)) = options.static_size
        && !((1..=MAX_STATIC_SIDE).contains(&width) && (1..=MAX_STATIC_SIDE).contains(&height))
    {
        return Err(OnnxExportError::StaticSize { width, height });
    }
    if options.with_priors && options.static_size.is_none() {
        return Err(OnnxExportError::PriorsNeedStaticSize);
    }
    Ok(())
}

/// What a consumer needs to feed and read the graph, in words.
fn describe(config: &RetinaFaceConfig) -> String {
    let n = &config.input;
    format!(
        "RetinaFace (facestudio preset {preset:?}). Input: [N, 3, H, W] float32, {order:?} channels, \
         (pixel * {scale} - mean {mean:?}) / std {std:?}. Outputs, one row per anchor (pyramid level finest \
         first, then row, column, anchor size): loc (box regressions, variance {vc}/{vs}), conf (softmax: \
         background, face), landms (landmark regressions) of the last head stage; with the cascade, \
         loc_stage1 is the first stage's regressions, and the last stage regresses from the boxes it \
         decodes; boxes (with priors): the last stage's boxes in input pixels, x1 y1 x2 y2.",
        preset = config.preset,
        order = n.order,
        scale = n.scale,
        mean = n.mean,
        std = n.std,
        vc = config.variance.center,
        vs = config.variance.size,
    )
}

fn build(model: &RetinaFace, options: &OnnxOptions) -> Result<ModelProto, OnnxExportError> {
    check_options(options)?;
    let config = &model.config;
    let unsupported = |what: &str| OnnxExportError::Unsupported { what: format!("preset {:?}: {what}", config.preset) };
    let mut g = GraphBuilder::new();
    g.reserve(INPUT);
    let mut writer = NetworkWriter::new(&mut g, &config.preset);
    let features = writer.features(model, INPUT)?;
    let (last, earlier) = model.heads.split_last().ok_or_else(|| unsupported("the network has no head stage"))?;
    let s = earlier.len();
    let loc = writer.head_rows(&format!("heads.{s}.bbox"), "loc", &features, &last.bbox, 4);
    let class = format!("heads.{s}.class");
    let logits = writer.head_rows(&class, &format!("{class}/concat"), &features, &last.class, 2);
    writer.graph().node("Softmax", "conf", &[&logits], &[("axis", Attr::Int(2))]);
    if config.landmarks {
        let convs = last.landmark.as_ref().ok_or_else(|| unsupported("the config has landmarks, the model no head"))?;
        writer.head_rows(&format!("heads.{s}.landmark"), "landms", &features, convs, 10);
    }
    let mut stage_locs = Vec::with_capacity(model.heads.len());
    for (k, stage) in earlier.iter().enumerate() {
        let output = format!("loc_stage{}", k + 1);
        stage_locs.push(writer.head_rows(&format!("heads.{k}.bbox"), &output, &features, &stage.bbox, 4));
    }
    stage_locs.push(loc);
    if options.with_priors {
        let (width, height) = options.static_size.ok_or(OnnxExportError::PriorsNeedStaticSize)?;
        let anchors = config.anchors.generate(width as u32, height as u32);
        decode::decoded_boxes(writer.graph(), &anchors, config.variance, &stage_locs, "boxes");
    }
    let outputs = output_specs(config, options)
        .iter()
        .map(|o| value_info(&o.name, &output_dims(config, options, o.per_anchor)))
        .collect();
    let config_json =
        serde_json::to_string(config).map_err(|e| OnnxExportError::Serialize { message: e.to_string() })?;
    let metadata =
        vec![("facestudio.preset".to_string(), config.preset.clone()), ("facestudio.config".to_string(), config_json)];
    let inputs = vec![value_info(INPUT, &input_dims(options))];
    Ok(model_proto(g, &format!("retinaface-{}", config.preset), inputs, outputs, &describe(config), metadata))
}

/// `model` (its BatchNorms with their running statistics) as a serialized ONNX `ModelProto`.
pub fn onnx_model_bytes(model: &RetinaFace, options: &OnnxOptions) -> Result<Vec<u8>, OnnxExportError> {
    build(model, options)?.write_to_bytes().map_err(|e| OnnxExportError::Serialize { message: e.to_string() })
}

/// [`onnx_model_bytes`] written to `path` atomically (the old file, if any, stays whole until
/// the new one is complete).
pub fn write_onnx(model: &RetinaFace, options: &OnnxOptions, path: &Path) -> Result<(), OnnxExportError> {
    let bytes = onnx_model_bytes(model, options)?;
    crate::fsutil::write_atomic(path, &bytes)
        .map_err(|source| OnnxExportError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use burn::prelude::*;

    use super::*;

    fn names(specs: &[OutputSpec]) -> Vec<&str> {
        specs.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn outputs_follow_the_heads_of_the_config() {
        let dynamic = OnnxOptions::default();
        let tiny = RetinaFaceConfig::preset("tiny").unwrap();
        assert_eq!(names(&output_specs(&tiny, &dynamic)), ["loc", "conf", "landms", "loc_stage1"], "cascade");
        let mnet = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
        assert_eq!(names(&output_specs(&mnet, &dynamic)), ["loc", "conf", "landms"]);
        let no_landmarks = RetinaFaceConfig::preset("seed-context").unwrap();
        assert_eq!(names(&output_specs(&no_landmarks, &dynamic)), ["loc", "conf"]);
        let priors = OnnxOptions { static_size: Some((64, 32)), with_priors: true };
        assert_eq!(names(&output_specs(&mnet, &priors)), ["loc", "conf", "landms", "boxes"]);
        let per_anchor: Vec<usize> = output_specs(&tiny, &dynamic).iter().map(|s| s.per_anchor).collect();
        assert_eq!(per_anchor, [4, 2, 10, 4]);
    }

    #[test]
    fn shapes_are_named_when_dynamic_and_counted_when_static() {
        let config = RetinaFaceConfig::preset("fd1mb-mnet").unwrap();
        let dynamic = OnnxOptions::default();
        assert_eq!(
            input_dims(&dynamic),
            [Dim::Named("batch"), Dim::Fixed(3), Dim::Named("height"), Dim::Named("width")]
        );
        assert_eq!(output_dims(&config, &dynamic, 4), [Dim::Named("batch"), Dim::Named("anchors"), Dim::Fixed(4)]);
        // 100 wide, 60 high: strides 8, 16, 32 give 13×8, 7×4, 4×2 cells (ceil), two anchors each.
        let fixed = OnnxOptions { static_size: Some((100, 60)), with_priors: false };
        assert_eq!(input_dims(&fixed), [Dim::Named("batch"), Dim::Fixed(3), Dim::Fixed(60), Dim::Fixed(100)]);
        let anchors = 2 * (13 * 8 + 7 * 4 + 4 * 2);
        assert_eq!(config.anchors.count(100, 60), anchors);
        assert_eq!(output_dims(&config, &fixed, 10), [Dim::Named("batch"), Dim::Fixed(anchors), Dim::Fixed(10)]);
    }

    #[test]
    fn priors_need_a_static_size_and_a_static_size_must_be_sensible() {
        let priors = OnnxOptions { static_size: None, with_priors: true };
        let err = check_options(&priors).unwrap_err();
        assert!(matches!(err, OnnxExportError::PriorsNeedStaticSize));
        assert!(err.to_string().contains("--static"), "{err}");
        for (width, height) in [(0, 64), (64, 0), (MAX_STATIC_SIDE + 1, 64)] {
            let options = OnnxOptions { static_size: Some((width, height)), with_priors: false };
            let err = check_options(&options).unwrap_err();
            assert!(matches!(err, OnnxExportError::StaticSize { .. }), "{width}×{height}: {err}");
        }
        assert!(check_options(&OnnxOptions { static_size: Some((1, MAX_STATIC_SIDE)), with_priors: true }).is_ok());
    }

    fn dims_of(v: &ValueInfoProto) -> Vec<String> {
        let Some(type_proto::Value::TensorType(t)) = &v.type_.value else { panic!("{} is not a tensor", v.name) };
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

    #[test]
    fn the_graph_is_sorted_and_declares_opset_17_its_input_and_outputs() {
        let config = RetinaFaceConfig::preset("tiny").unwrap();
        let model = RetinaFace::new(&config, &Device::flex());
        let options = OnnxOptions { static_size: Some((64, 32)), with_priors: true };
        let bytes = onnx_model_bytes(&model, &options).unwrap();
        let proto = ModelProto::parse_from_bytes(&bytes).unwrap();
        assert_eq!((proto.ir_version, proto.opset_import.len()), (8, 1));
        assert_eq!((proto.opset_import[0].domain.as_str(), proto.opset_import[0].version), ("", 17));
        let graph = proto.graph.as_ref().unwrap();
        assert_eq!(graph.input.len(), 1);
        assert_eq!(graph.input[0].name, "input");
        assert_eq!(dims_of(&graph.input[0]), ["batch", "3", "32", "64"]);
        let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outputs, ["loc", "conf", "landms", "loc_stage1", "boxes"]);
        let anchors = config.anchors.count(64, 32).to_string();
        assert_eq!(dims_of(&graph.output[2]), ["batch", anchors.as_str(), "10"]);
        // Every node reads only the input, constants and earlier nodes' outputs (ONNX needs a
        // topologically sorted graph), and every value is produced once.
        let mut known: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        known.insert("input");
        for node in &graph.node {
            for input in node.input.iter().filter(|i| !i.is_empty()) {
                assert!(known.contains(input.as_str()), "{} reads {input} before it exists", node.name);
            }
            for output in &node.output {
                assert!(known.insert(output.as_str()), "{output} is produced twice");
            }
        }
        assert!(outputs.iter().all(|o| known.contains(o)), "every output is produced");
        // Runtimes name the pieces they split a node into `NODE.PIECE` (tract wires a Conv's bias
        // cast as `NAME.bias` and refuses a name twice): no name may look like one.
        let node_names: HashSet<&str> = graph.node.iter().map(|n| n.name.as_str()).collect();
        let every_name =
            graph.node.iter().map(|n| n.name.as_str()).chain(graph.initializer.iter().map(|t| t.name.as_str()));
        for name in every_name {
            for (dot, _) in name.match_indices('.') {
                assert!(!node_names.contains(&name[..dot]), "{name} looks like a piece of node {}", &name[..dot]);
            }
        }
        let ops: HashSet<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        let allowed = [
            "Conv",
            "Relu",
            "LeakyRelu",
            "MaxPool",
            "Add",
            "Sub",
            "Mul",
            "Div",
            "Exp",
            "Clip",
            "Shape",
            "Resize",
            "Concat",
            "Transpose",
            "Reshape",
            "Softmax",
            "Slice",
        ];
        assert!(ops.iter().all(|op| allowed.contains(op)), "{ops:?}");
        assert!(!ops.contains("BatchNormalization"), "batch norms are folded");
        let meta: Vec<&str> = proto.metadata_props.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(meta, ["facestudio.preset", "facestudio.config"]);
        let saved: RetinaFaceConfig = serde_json::from_str(&proto.metadata_props[1].value).unwrap();
        assert_eq!(saved, config, "the graph says how the model was built");
    }

    #[test]
    fn write_onnx_names_the_path_it_cannot_write() {
        let model = RetinaFace::new(&RetinaFaceConfig::preset("fd1mb-mnet").unwrap(), &Device::flex());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("model.onnx");
        let err = write_onnx(&model, &OnnxOptions::default(), &path).unwrap_err();
        assert!(matches!(err, OnnxExportError::Write { .. }));
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        let path = dir.path().join("model.onnx");
        write_onnx(&model, &OnnxOptions::default(), &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), onnx_model_bytes(&model, &OnnxOptions::default()).unwrap());
    }
}
