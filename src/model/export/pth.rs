//! PyTorch checkpoints written without PyTorch, in `torch.save`'s zip format (PyTorch ≥ 1.6), so
//! that `torch.load(path, weights_only=True)` returns the state dict and Pytorch_Retinaface's
//! `load_state_dict(..., strict=True)` accepts it.
//!
//! The archive (stored entries, each entry's data aligned to 64 bytes as torch writes them) holds,
//! under one folder: `data.pkl`, the state dict pickled at protocol 2 as
//! `OrderedDict([(name, torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False,
//! OrderedDict())), …])`, every storage a persistent id `('storage', torch.FloatStorage or
//! torch.LongStorage, key, 'cpu', numel)`; `data/<key>`, each storage's raw little-endian
//! elements; `version` (`3`), `byteorder` (`little`), `.format_version` and `.storage_alignment`.

use std::io::{self, Cursor, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::{ElementType, ExportError, ExportTensor, TensorNames, state_dict};
use crate::model::RetinaFace;

/// The folder every entry lies in: the name `torch.save` gives it when it writes to a buffer
/// (any name loads).
const ARCHIVE: &str = "archive";

/// torch aligns each entry's data (`.storage_alignment`) so that a reader can map storages in place.
const STORAGE_ALIGNMENT: u16 = 64;

/// Writes `model` as a Pytorch_Retinaface / Face-Detector-1MB checkpoint (atomically). Networks
/// PyTorch does not have are refused ([`ExportError::NoPytorchLayout`]): safetensors takes them.
pub fn write_pth(model: &RetinaFace, path: &Path) -> Result<(), ExportError> {
    let tensors = state_dict(model, TensorNames::Pytorch)?;
    let write_error = |e: io::Error| ExportError::Write { path: path.to_path_buf(), message: e.to_string() };
    let bytes = pth_bytes(&tensors).map_err(write_error)?;
    crate::fsutil::write_atomic(path, &bytes).map_err(write_error)
}

/// The checkpoint file of a state dict, in memory.
pub fn pth_bytes(tensors: &[ExportTensor]) -> io::Result<Vec<u8>> {
    let options =
        SimpleFileOptions::default().compression_method(CompressionMethod::Stored).with_alignment(STORAGE_ALIGNMENT);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let entry = |zip: &mut ZipWriter<Cursor<Vec<u8>>>, name: &str, bytes: &[u8]| -> io::Result<()> {
        // Entries of 4 GiB or more need zip64 headers.
        let options = options.large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(format!("{ARCHIVE}/{name}"), options)?;
        zip.write_all(bytes)
    };
    // The order torch.save writes them in.
    entry(&mut zip, "data.pkl", &data_pkl(tensors))?;
    entry(&mut zip, ".format_version", b"1")?;
    entry(&mut zip, ".storage_alignment", STORAGE_ALIGNMENT.to_string().as_bytes())?;
    entry(&mut zip, "byteorder", b"little")?;
    for (key, tensor) in tensors.iter().enumerate() {
        if tensor.data.len() != tensor.numel() * tensor.dtype.size() {
            let message = format!("{}: {} bytes for shape {:?}", tensor.name, tensor.data.len(), tensor.shape);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        entry(&mut zip, &format!("data/{key}"), &tensor.data)?;
    }
    entry(&mut zip, "version", b"3\n")?;
    Ok(zip.finish()?.into_inner())
}

/// The state dict as `torch.save` pickles it (see the module comment); storage `i` is tensor `i`.
fn data_pkl(tensors: &[ExportTensor]) -> Vec<u8> {
    let mut p = Pickle::default();
    p.op(op::PROTO);
    p.bytes.push(2);
    p.global("collections", "OrderedDict");
    p.op(op::EMPTY_TUPLE);
    p.op(op::REDUCE);
    // Python's pickler sets dictionary items in batches of 1000.
    for (batch, chunk) in tensors.chunks(1000).enumerate() {
        p.op(op::MARK);
        for (i, tensor) in chunk.iter().enumerate() {
            let key = batch * 1000 + i;
            p.unicode(&tensor.name);
            p.global("torch._utils", "_rebuild_tensor_v2");
            p.op(op::MARK);
            {
                // The storage, loaded from `data/<key>`.
                p.op(op::MARK);
                p.unicode("storage");
                p.global(
                    "torch",
                    match tensor.dtype {
                        ElementType::F32 => "FloatStorage",
                        ElementType::I64 => "LongStorage",
                    },
                );
                p.unicode(&key.to_string());
                p.unicode("cpu");
                p.int(tensor.numel() as u64);
                p.op(op::TUPLE);
                p.op(op::BINPERSID);
                // Storage offset, size, stride (contiguous), requires_grad, backward hooks.
                p.int(0);
                p.int_tuple(&tensor.shape);
                p.int_tuple(&contiguous_strides(&tensor.shape));
                p.op(op::NEWFALSE);
                p.global("collections", "OrderedDict");
                p.op(op::EMPTY_TUPLE);
                p.op(op::REDUCE);
            }
            p.op(op::TUPLE);
            p.op(op::REDUCE);
        }
        p.op(op::SETITEMS);
    }
    p.op(op::STOP);
    p.bytes
}

/// Row-major strides in elements (`()` for a scalar).
fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// The pickle opcodes used (Python's `pickletools` names).
mod op {
    pub const PROTO: u8 = 0x80;
    pub const GLOBAL: u8 = b'c';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const REDUCE: u8 = b'R';
    pub const MARK: u8 = b'(';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const BINUNICODE: u8 = b'X';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const BININT: u8 = b'J';
    pub const LONG1: u8 = 0x8a;
    pub const BINPERSID: u8 = b'Q';
    pub const NEWFALSE: u8 = 0x89;
    pub const SETITEMS: u8 = b'u';
    pub const STOP: u8 = b'.';
}

/// A pickle being written: only what a state dict needs, no memo (a reader needs none).
#[derive(Default)]
struct Pickle {
    bytes: Vec<u8>,
}

impl Pickle {
    fn op(&mut self, code: u8) {
        self.bytes.push(code);
    }

    /// `module.name`, looked up by the unpickler (`weights_only` allows the few used here).
    fn global(&mut self, module: &str, name: &str) {
        self.op(op::GLOBAL);
        for part in [module, name] {
            self.bytes.extend_from_slice(part.as_bytes());
            self.bytes.push(b'\n');
        }
    }

    fn unicode(&mut self, text: &str) {
        self.op(op::BINUNICODE);
        // A name longer than 4 GiB cannot occur: every tensor name is a short module path.
        let len = u32::try_from(text.len()).unwrap_or_else(|_| unreachable!("a 4 GiB tensor name"));
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(text.as_bytes());
    }

    /// A non-negative integer in the shortest form Python's pickler uses for it.
    fn int(&mut self, value: u64) {
        if let Ok(byte) = u8::try_from(value) {
            self.op(op::BININT1);
            self.bytes.push(byte);
        } else if let Ok(short) = u16::try_from(value) {
            self.op(op::BININT2);
            self.bytes.extend_from_slice(&short.to_le_bytes());
        } else if let Ok(int) = i32::try_from(value) {
            self.op(op::BININT);
            self.bytes.extend_from_slice(&int.to_le_bytes());
        } else {
            // Little-endian two's complement, as short as it goes while staying positive.
            let mut digits = value.to_le_bytes().to_vec();
            while digits.len() > 1 && digits[digits.len() - 1] == 0 && digits[digits.len() - 2] & 0x80 == 0 {
                digits.pop();
            }
            if digits[digits.len() - 1] & 0x80 != 0 {
                digits.push(0);
            }
            self.op(op::LONG1);
            self.bytes.push(digits.len() as u8);
            self.bytes.extend_from_slice(&digits);
        }
    }

    fn int_tuple(&mut self, values: &[usize]) {
        let short = match values.len() {
            0 => Some(op::EMPTY_TUPLE),
            1 => Some(op::TUPLE1),
            2 => Some(op::TUPLE2),
            3 => Some(op::TUPLE3),
            _ => None,
        };
        if short.is_none() {
            self.op(op::MARK);
        }
        for &value in values {
            self.int(value as u64);
        }
        self.op(short.unwrap_or(op::TUPLE));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use burn::store::pytorch_reader::{self, PytorchReader};

    use super::*;

    fn ints(value: u64) -> Vec<u8> {
        let mut p = Pickle::default();
        p.int(value);
        p.bytes
    }

    #[test]
    fn integers_take_the_forms_python_writes() {
        assert_eq!(ints(216), [b'K', 216]);
        assert_eq!(ints(300), [b'M', 0x2c, 0x01]);
        assert_eq!(ints(190_840), [b'J', 0x78, 0xe9, 0x02, 0x00]);
        // pickle.dumps(2**31, 2) == b'\x80\x02\x8a\x05\x00\x00\x00\x80\x00.'
        assert_eq!(ints(1 << 31), [0x8a, 5, 0, 0, 0, 0x80, 0]);
        // pickle.dumps(2**32, 2): five bytes, the top one positive.
        assert_eq!(ints(1 << 32), [0x8a, 5, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn strides_are_row_major() {
        assert_eq!(contiguous_strides(&[8, 3, 3, 3]), [27, 9, 3, 1]);
        assert_eq!(contiguous_strides(&[8]), [1]);
        assert_eq!(contiguous_strides(&[]), Vec::<usize>::new());
    }

    fn tensors() -> Vec<ExportTensor> {
        let weights: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        vec![
            ExportTensor {
                name: "body.conv.weight".into(),
                dtype: ElementType::F32,
                shape: vec![2, 3, 2, 2],
                data: weights.iter().flat_map(|v| v.to_le_bytes()).collect(),
            },
            ExportTensor {
                name: "body.bn.num_batches_tracked".into(),
                dtype: ElementType::I64,
                shape: vec![],
                data: 190_840i64.to_le_bytes().to_vec(),
            },
        ]
    }

    #[test]
    fn burns_pytorch_reader_reads_the_tensors_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.pth");
        std::fs::write(&path, pth_bytes(&tensors()).unwrap()).unwrap();
        let reader = PytorchReader::new(&path).unwrap();
        assert_eq!(reader.len(), 2);
        for expected in tensors() {
            let tensor = reader.get(&expected.name).unwrap_or_else(|| panic!("{} missing", expected.name));
            assert_eq!(tensor.shape(), expected.shape.as_slice(), "{}", expected.name);
            let dtype = match expected.dtype {
                ElementType::F32 => pytorch_reader::DType::F32,
                ElementType::I64 => pytorch_reader::DType::I64,
            };
            assert_eq!(tensor.dtype(), dtype, "{}", expected.name);
            assert_eq!(tensor.read().unwrap(), expected.data, "{}", expected.name);
        }
    }

    #[test]
    fn entries_are_stored_aligned_and_in_torchs_order() {
        let bytes = pth_bytes(&tensors()).unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let expected =
            ["data.pkl", ".format_version", ".storage_alignment", "byteorder", "data/0", "data/1", "version"];
        assert_eq!(zip.len(), expected.len());
        for (i, expected) in expected.into_iter().enumerate() {
            let mut file = zip.by_index(i).unwrap();
            let name = file.name().unwrap().into_owned();
            assert_eq!(name, format!("archive/{expected}"));
            assert_eq!(file.compression(), CompressionMethod::Stored, "{name}");
            assert_eq!(file.data_start().unwrap() % 64, 0, "{name} starts at {:?}", file.data_start());
            let mut content = Vec::new();
            file.read_to_end(&mut content).unwrap();
            match expected {
                "version" => assert_eq!(content, b"3\n"),
                "byteorder" => assert_eq!(content, b"little"),
                ".storage_alignment" => assert_eq!(content, b"64"),
                _ => {}
            }
        }
    }
}
