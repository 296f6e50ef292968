//! A bounded walk over a MAT-file (level 5) before `matrw` parses it: `matrw` sizes allocations
//! from the file and recurses without limit, so a zlib bomb, a forged dimension or a deeply nested
//! cell would abort the process or overflow its stack. This walk decompresses within a limit,
//! refuses nesting deeper than any ground truth needs and dimensions that the element's bytes
//! cannot hold, and reads nothing else.

use std::io::Read;

/// The largest MAT-file read (the official `wider_face_val.mat` is under 1 MB).
pub const MAX_MAT_BYTES: u64 = 256 << 20;
/// The most bytes a file's compressed elements may inflate to, all together.
pub const MAX_DECOMPRESSED: u64 = 1 << 30;
/// Cells within cells: the ground truth has three levels (events → images → boxes).
pub const MAX_DEPTH: usize = 16;

const MI_INT8: u32 = 1;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const CELL_CLASS: u8 = 1;
const STRUCT_CLASS: u8 = 2;

/// Why the file is refused, in words for `GroundTruthError::MatFormat`.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 128 {
        return Err("shorter than a MAT-file header (128 bytes)".into());
    }
    let little = match &bytes[126..128] {
        b"IM" => true,
        b"MI" => false,
        _ => return Err("no MAT-file (level 5) endianness mark in the header".into()),
    };
    let mut walk = Walk { little, inflated: 0 };
    walk.elements(&bytes[128..], 0)
}

struct Walk {
    little: bool,
    inflated: u64,
}

/// One data element: its type and its data.
struct Element<'a> {
    kind: u32,
    data: &'a [u8],
}

impl Walk {
    fn word(&self, bytes: &[u8], at: usize) -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    /// The element at `at` and where the next one starts.
    fn element<'a>(&self, bytes: &'a [u8], at: usize) -> Result<(Element<'a>, usize), String> {
        let truncated = || format!("an element at byte {at} runs past the end of its data");
        let tag = self.word(bytes, at).ok_or_else(truncated)?;
        if tag >> 16 != 0 {
            // The small format: type and size in one word, up to four bytes of data after it.
            let (kind, len) = (tag & 0xffff, (tag >> 16) as usize);
            let data = bytes.get(at + 4..at + 4 + len.min(4)).ok_or_else(truncated)?;
            return Ok((Element { kind, data }, at + 8));
        }
        let len = self.word(bytes, at + 4).ok_or_else(truncated)? as usize;
        let data = bytes.get(at + 8..at + 8 + len).ok_or_else(truncated)?;
        // Elements are padded to 8 bytes, compressed ones are not.
        let next = if tag == MI_COMPRESSED { at + 8 + len } else { at + 8 + len.div_ceil(8) * 8 };
        Ok((Element { kind: tag, data }, next))
    }

    fn elements(&mut self, bytes: &[u8], depth: usize) -> Result<(), String> {
        let mut at = 0;
        while at + 8 <= bytes.len() {
            let (element, next) = self.element(bytes, at)?;
            self.top(&element, depth)?;
            at = next;
        }
        Ok(())
    }

    fn top(&mut self, element: &Element, depth: usize) -> Result<(), String> {
        match element.kind {
            MI_COMPRESSED => {
                let room = MAX_DECOMPRESSED - self.inflated;
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(element.data)
                    .take(room + 1)
                    .read_to_end(&mut inflated)
                    .map_err(|e| format!("a compressed element does not inflate: {e}"))?;
                if inflated.len() as u64 > room {
                    return Err(format!("its compressed elements inflate to more than {} MiB", MAX_DECOMPRESSED >> 20));
                }
                self.inflated += inflated.len() as u64;
                self.elements(&inflated, depth)
            }
            MI_MATRIX => self.matrix(element.data, depth),
            _ => Ok(()),
        }
    }

    /// An array: flags, dimensions, name, then its data (cells and struct fields are arrays).
    fn matrix(&mut self, bytes: &[u8], depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("arrays nested deeper than {MAX_DEPTH} levels"));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let (flags, at) = self.element(bytes, 0)?;
        if flags.kind != MI_UINT32 || flags.data.len() < 8 {
            return Err("an array without its flags".into());
        }
        let class = (self.word(flags.data, 0).unwrap_or(0) & 0xff) as u8;
        let (dims, at) = self.element(bytes, at)?;
        if dims.kind != MI_INT32 || dims.data.is_empty() {
            return Err("an array without its dimensions".into());
        }
        let mut count: u64 = 1;
        for i in 0..dims.data.len() / 4 {
            let d = self.word(dims.data, 4 * i).unwrap_or(0);
            if d > i32::MAX as u32 {
                return Err(format!("a negative array dimension ({})", d as i32));
            }
            count = count.saturating_mul(u64::from(d));
        }
        let (name, mut at) = self.element(bytes, at)?;
        if name.kind != MI_INT8 {
            return Err("an array without its name".into());
        }
        let rest = (bytes.len() - at.min(bytes.len())) as u64;
        match class {
            CELL_CLASS | STRUCT_CLASS => {
                if class == STRUCT_CLASS {
                    // Field-name length, then the names: the fields are arrays like cells.
                    let (_, after_length) = self.element(bytes, at)?;
                    let (_, after_names) = self.element(bytes, after_length)?;
                    at = after_names;
                }
                // Every cell or field is an element of at least 8 bytes.
                if count > rest / 8 {
                    return Err(format!("an array of {count} cells in {rest} bytes"));
                }
                while at + 8 <= bytes.len() {
                    let (element, next) = self.element(bytes, at)?;
                    if element.kind == MI_MATRIX {
                        self.matrix(element.data, depth + 1)?;
                    }
                    at = next;
                }
                Ok(())
            }
            _ => {
                // Numeric and character data: each value takes at least one byte of storage.
                if count > rest {
                    return Err(format!("an array of {count} values in {rest} bytes"));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        let mut bytes = vec![b' '; 128];
        bytes[124..126].copy_from_slice(&0x0100u16.to_le_bytes());
        bytes[126..128].copy_from_slice(b"IM");
        bytes
    }

    fn element(kind: u32, data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_le_bytes().to_vec();
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        if kind != MI_COMPRESSED {
            out.resize(8 + data.len().div_ceil(8) * 8, 0);
        }
        out
    }

    /// A cell array `dims` holding `inner`.
    fn cell(dims: [u32; 2], inner: &[u8]) -> Vec<u8> {
        let mut data = element(MI_UINT32, &[CELL_CLASS, 0, 0, 0, 0, 0, 0, 0]);
        data.extend(element(MI_INT32, &[dims[0].to_le_bytes(), dims[1].to_le_bytes()].concat()));
        data.extend(element(MI_INT8, b"c"));
        data.extend(inner);
        element(MI_MATRIX, &data)
    }

    #[test]
    fn well_formed_nesting_passes() {
        let file = [header(), cell([1, 1], &cell([0, 0], &[]))].concat();
        check(&file).unwrap();
    }

    #[test]
    fn a_zlib_bomb_is_refused_before_it_inflates() {
        use std::io::Write;
        // 1.5 GiB of zeros compress to about 1.5 MB.
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 24];
        for _ in 0..96 {
            encoder.write_all(&zeros).unwrap();
        }
        let file = [header(), element(MI_COMPRESSED, &encoder.finish().unwrap())].concat();
        let err = check(&file).unwrap_err();
        assert!(err.contains("inflate to more than"), "{err}");
    }

    #[test]
    fn deep_nesting_and_forged_dimensions_are_refused() {
        let mut nested = Vec::new();
        for _ in 0..100 {
            nested = cell([1, 1], &nested);
        }
        let err = check(&[header(), nested].concat()).unwrap_err();
        assert!(err.contains("nested deeper"), "{err}");
        let forged = cell([65_536, 65_536], &[]);
        let err = check(&[header(), forged].concat()).unwrap_err();
        assert!(err.contains("cells in"), "{err}");
        assert!(check(b"not a mat file").is_err());
    }
}
