//! The Confluent wire format: `0x00`, a big-endian `u32` schema id, the Avro body.

/// Bytes before the Avro body.
const HEADER_LEN: usize = 5;
const MAGIC: u8 = 0;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("shorter than the 5-byte Confluent header")]
    Truncated,
    #[error("magic byte {0:#04x}, expected 0x00")]
    BadMagic(u8),
}

/// Splits a framed value into its schema id and Avro body.
pub fn split_frame(value: &[u8]) -> Result<(u32, &[u8]), WireError> {
    if value.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let (header, body) = value.split_at(HEADER_LEN);
    if header[0] != MAGIC {
        return Err(WireError::BadMagic(header[0]));
    }
    let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    Ok((id, body))
}

/// Frames an Avro body, as the encoder does ([`super::Encoder`]).
pub fn frame(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_what_frame_builds() {
        let framed = frame(0x0102_0304, b"avro");
        assert_eq!(framed[..5], [0, 1, 2, 3, 4]);
        assert_eq!(split_frame(&framed), Ok((0x0102_0304, &b"avro"[..])));
    }

    #[test]
    fn rejects_short_and_unframed_values() {
        assert_eq!(split_frame(&[0, 0, 0, 1]), Err(WireError::Truncated));
        assert_eq!(split_frame(b"{\"json\":1}"), Err(WireError::BadMagic(b'{')));
    }
}
