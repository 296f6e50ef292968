//! A small builder over the ONNX protobuf messages: nodes in the order they are added (ONNX wants
//! a topologically sorted graph, which writing the network front to back gives), constants as
//! initializers, and value names that are unique (ONNX graphs are in SSA form).

use std::collections::HashSet;

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{AttributeProto, NodeProto, TensorProto};
use protobuf::EnumOrUnknown;

/// An attribute value of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(&'static str),
}

/// The nodes and constants of one graph under construction.
#[derive(Default)]
pub struct GraphBuilder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    used: HashSet<String>,
}

fn attribute(name: &str, value: &Attr) -> AttributeProto {
    let mut a = AttributeProto { name: name.to_string(), ..AttributeProto::default() };
    let kind = match value {
        Attr::Int(i) => {
            a.i = *i;
            AttributeType::INT
        }
        Attr::Ints(v) => {
            a.ints = v.clone();
            AttributeType::INTS
        }
        Attr::Float(f) => {
            a.f = *f;
            AttributeType::FLOAT
        }
        Attr::Str(s) => {
            a.s = s.as_bytes().to_vec();
            AttributeType::STRING
        }
    };
    a.type_ = EnumOrUnknown::new(kind);
    a
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

impl GraphBuilder {
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// `base` the first time it is asked for, then `base_1`, `base_2`, …: every value and node
    /// name of the graph is given out once.
    pub fn unique(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 0;
        while self.used.contains(&name) {
            k += 1;
            name = format!("{base}_{k}");
        }
        self.used.insert(name.clone());
        name
    }

    /// Marks `name` as taken (the graph input) so that no node produces it.
    pub fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_string());
    }

    /// A node `op` on `inputs` (an empty name is an omitted optional input) with one output,
    /// named after `name` (node and output share the name); returns the output.
    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], attributes: &[(&str, Attr)]) -> String {
        let output = self.unique(name);
        self.nodes.push(NodeProto {
            name: output.clone(),
            op_type: op.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            attribute: attributes.iter().map(|(n, v)| attribute(n, v)).collect(),
            ..NodeProto::default()
        });
        output
    }

    /// A float32 constant of `shape` (row-major `values`), stored as little-endian raw data.
    pub fn floats(&mut self, name: &str, shape: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len(), "{name}");
        let name = self.unique(name);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims(shape),
            data_type: DataType::FLOAT as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..TensorProto::default()
        });
        name
    }

    /// An int64 constant of `shape`.
    pub fn ints(&mut self, name: &str, shape: &[usize], values: &[i64]) -> String {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len(), "{name}");
        let name = self.unique(name);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims(shape),
            data_type: DataType::INT64 as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..TensorProto::default()
        });
        name
    }

    /// A float32 scalar constant (rank 0).
    pub fn scalar(&mut self, name: &str, value: f32) -> String {
        self.floats(name, &[], &[value])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_given_out_once() {
        let mut g = GraphBuilder::new();
        g.reserve("input");
        assert_eq!(g.unique("input"), "input_1");
        assert_eq!(g.node("Relu", "a", &["input"], &[]), "a");
        assert_eq!(g.node("Relu", "a", &["a"], &[]), "a_1");
        assert_eq!(g.floats("a", &[1], &[1.0]), "a_2");
        assert_eq!(g.nodes[1].input, ["a"]);
        assert_eq!(g.nodes[1].output, ["a_1"]);
    }

    #[test]
    fn constants_are_little_endian_raw_data_with_their_dims() {
        let mut g = GraphBuilder::new();
        g.floats("w", &[2, 1], &[1.0, -2.5]);
        g.ints("shape", &[3], &[0, -1, 4]);
        g.scalar("two", 2.0);
        let [w, shape, two] = &g.initializers[..] else { panic!("three constants") };
        assert_eq!((w.dims.as_slice(), w.data_type), (&[2i64, 1][..], DataType::FLOAT as i32));
        assert_eq!(w.raw_data, [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat());
        assert_eq!(shape.data_type, DataType::INT64 as i32);
        assert_eq!(shape.raw_data.len(), 3 * 8);
        assert_eq!(&shape.raw_data[8..16], &(-1i64).to_le_bytes());
        assert!(two.dims.is_empty(), "a scalar has rank 0");
    }

    #[test]
    fn attributes_carry_their_type() {
        let mut g = GraphBuilder::new();
        g.node(
            "Resize",
            "up",
            &["x", "", "", "sizes"],
            &[("mode", Attr::Str("nearest")), ("axis", Attr::Int(1)), ("alpha", Attr::Float(0.1))],
        );
        let a = &g.nodes[0].attribute;
        assert_eq!(a[0].type_.enum_value(), Ok(AttributeType::STRING));
        assert_eq!(a[0].s, b"nearest");
        assert_eq!((a[1].type_.enum_value(), a[1].i), (Ok(AttributeType::INT), 1));
        assert_eq!((a[2].type_.enum_value(), a[2].f), (Ok(AttributeType::FLOAT), 0.1));
        assert_eq!(g.nodes[0].input, ["x", "", "", "sizes"], "omitted optional inputs stay empty names");
    }
}
