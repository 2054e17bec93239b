//! A model's input values in the datatype its graph takes (the card's
//! [`InputDatatype`]): what the server preprocesses a picture into and what it reads from
//! protocol requests, before they are batched into one tensor.

use half::f16;

use crate::card::{InputDatatype, InputSpec};
use crate::decode::Rgb8;
use crate::image::{preprocess_rgb8, resize_rgb8};

/// Values of a model input, row-major: one image (`3 × height × width`) or a batch of them.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValues {
    Fp32(Vec<f32>),
    Fp16(Vec<f16>),
    Uint8(Vec<u8>),
}

/// Why bytes or numbers cannot be a model's input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("{bytes} bytes, the shape needs {needed} ({datatype})")]
    ByteCount {
        bytes: usize,
        needed: usize,
        datatype: InputDatatype,
    },
    #[error("{value} is not a UINT8 value (an integer in 0..=255)")]
    NotUint8 { value: f64 },
    #[error("{value} is out of range for {datatype}")]
    OutOfRange { value: f64, datatype: InputDatatype },
}

impl InputValues {
    /// The network input for a decoded picture: resized to the card's size in the card's
    /// datatype. FP32 and FP16 are normalised here ([`preprocess_rgb8`], FP16 rounded from it);
    /// UINT8 is the resized 8-bit pixels ([`resize_rgb8`]), which the graph normalises.
    pub fn preprocess(pixels: &Rgb8, input: &InputSpec) -> Self {
        let size = [input.width, input.height];
        match input.datatype {
            InputDatatype::Uint8 => {
                let mut out = Vec::with_capacity(3 * size[0] * size[1]);
                resize_rgb8(pixels, size, &mut out);
                Self::Uint8(out)
            }
            datatype => {
                let mut out = Vec::with_capacity(3 * size[0] * size[1]);
                preprocess_rgb8(pixels, size, &input.normalization, &mut out);
                match datatype {
                    InputDatatype::Fp16 => Self::Fp16(out.into_iter().map(f16::from_f32).collect()),
                    _ => Self::Fp32(out),
                }
            }
        }
    }

    /// `count` zeros of `datatype`.
    pub fn zeros(datatype: InputDatatype, count: usize) -> Self {
        match datatype {
            InputDatatype::Fp32 => Self::Fp32(vec![0.0; count]),
            InputDatatype::Fp16 => Self::Fp16(vec![f16::ZERO; count]),
            InputDatatype::Uint8 => Self::Uint8(vec![0; count]),
        }
    }

    /// `count` values of `datatype` from their little-endian bytes (the Open Inference
    /// Protocol's binary and raw forms); the byte count must be exactly what they take.
    pub fn from_le_bytes(
        datatype: InputDatatype,
        bytes: &[u8],
        count: usize,
    ) -> Result<Self, InputError> {
        let needed = count * datatype.size();
        if bytes.len() != needed {
            return Err(InputError::ByteCount {
                bytes: bytes.len(),
                needed,
                datatype,
            });
        }
        Ok(match datatype {
            InputDatatype::Fp32 => Self::Fp32(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            InputDatatype::Fp16 => Self::Fp16(
                bytes
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            ),
            InputDatatype::Uint8 => Self::Uint8(bytes.to_vec()),
        })
    }

    /// Values of `datatype` from numbers (the protocol's JSON form). UINT8 takes integers in
    /// `0..=255` only; FP16 takes finite numbers within its range (±65504).
    pub fn from_numbers(datatype: InputDatatype, numbers: &[f64]) -> Result<Self, InputError> {
        Ok(match datatype {
            InputDatatype::Fp32 => Self::Fp32(numbers.iter().map(|&v| v as f32).collect()),
            InputDatatype::Fp16 => Self::Fp16(
                numbers
                    .iter()
                    .map(|&value| {
                        let half = f16::from_f64(value);
                        if value.is_finite() && !half.is_finite() {
                            Err(InputError::OutOfRange { value, datatype })
                        } else {
                            Ok(half)
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
            InputDatatype::Uint8 => Self::Uint8(
                numbers
                    .iter()
                    .map(|&value| {
                        if value.fract() == 0.0 && (0.0..=255.0).contains(&value) {
                            Ok(value as u8)
                        } else {
                            Err(InputError::NotUint8 { value })
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    pub fn datatype(&self) -> InputDatatype {
        match self {
            Self::Fp32(_) => InputDatatype::Fp32,
            Self::Fp16(_) => InputDatatype::Fp16,
            Self::Uint8(_) => InputDatatype::Uint8,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Fp32(v) => v.len(),
            Self::Fp16(v) => v.len(),
            Self::Uint8(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Consecutive runs of `size` values (a batch's images); a shorter tail is dropped.
    pub fn chunks(&self, size: usize) -> Vec<Self> {
        let size = size.max(1);
        match self {
            Self::Fp32(v) => v
                .chunks_exact(size)
                .map(|c| Self::Fp32(c.to_vec()))
                .collect(),
            Self::Fp16(v) => v
                .chunks_exact(size)
                .map(|c| Self::Fp16(c.to_vec()))
                .collect(),
            Self::Uint8(v) => v
                .chunks_exact(size)
                .map(|c| Self::Uint8(c.to_vec()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::Normalization;

    fn spec(datatype: InputDatatype) -> InputSpec {
        InputSpec {
            name: "images".into(),
            width: 4,
            height: 3,
            normalization: Normalization::default(),
            datatype,
        }
    }

    #[test]
    fn each_datatype_preprocesses_to_its_own_values() {
        let pixels = Rgb8 {
            width: 8,
            height: 6,
            data: (0..8 * 6 * 3).map(|i| (i * 37 % 256) as u8).collect(),
        };
        let InputValues::Fp32(floats) =
            InputValues::preprocess(&pixels, &spec(InputDatatype::Fp32))
        else {
            panic!("FP32 expected");
        };
        assert_eq!(floats.len(), 3 * 4 * 3);
        let InputValues::Fp16(halves) =
            InputValues::preprocess(&pixels, &spec(InputDatatype::Fp16))
        else {
            panic!("FP16 expected");
        };
        for (h, f) in halves.iter().zip(&floats) {
            assert_eq!(*h, f16::from_f32(*f));
        }
        let InputValues::Uint8(bytes) =
            InputValues::preprocess(&pixels, &spec(InputDatatype::Uint8))
        else {
            panic!("UINT8 expected");
        };
        let mut expected = Vec::new();
        resize_rgb8(&pixels, [4, 3], &mut expected);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn bytes_and_numbers_are_read_or_refused_by_datatype() {
        let halves = [1.5f32, -2.0].map(f16::from_f32);
        let bytes: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        assert_eq!(
            InputValues::from_le_bytes(InputDatatype::Fp16, &bytes, 2).unwrap(),
            InputValues::Fp16(halves.to_vec())
        );
        let error = InputValues::from_le_bytes(InputDatatype::Fp32, &bytes, 2).unwrap_err();
        assert_eq!(error.to_string(), "4 bytes, the shape needs 8 (FP32)");
        assert_eq!(
            InputValues::from_numbers(InputDatatype::Uint8, &[0.0, 255.0, 7.0]).unwrap(),
            InputValues::Uint8(vec![0, 255, 7])
        );
        for bad in [256.0, -1.0, 0.5] {
            let error = InputValues::from_numbers(InputDatatype::Uint8, &[bad]).unwrap_err();
            assert!(error.to_string().contains("UINT8"), "{error}");
        }
        let error = InputValues::from_numbers(InputDatatype::Fp16, &[1e6]).unwrap_err();
        assert!(
            error.to_string().contains("out of range for FP16"),
            "{error}"
        );
        let chunks = InputValues::Uint8(vec![1, 2, 3, 4, 5]).chunks(2);
        assert_eq!(
            chunks,
            [
                InputValues::Uint8(vec![1, 2]),
                InputValues::Uint8(vec![3, 4])
            ]
        );
    }
}
