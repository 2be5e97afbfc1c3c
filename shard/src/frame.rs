//! Record framing for append-only files: `len: u32 LE | crc32(payload): u32 LE | payload`, the
//! payload being postcard. Used by the shard journal and by the embedded accounts log.
//!
//! A reader stops at the first record that is torn (cut short) or damaged (bad length or
//! checksum) and reports why; everything before it is intact. A record whose checksum holds but
//! that does not decode is neither: it was written whole, by another format, so a reader
//! reports it as [`Stop::Undecodable`] and the caller must not truncate it away.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Read;

/// Bytes before each payload.
pub const HEADER: usize = 8;

/// Appends one framed record to `buf`.
pub fn encode<T: Serialize>(record: &T, buf: &mut Vec<u8>) {
    encode_with(buf, |out| postcard_into(record, out));
}

/// Appends one framed record to `buf`, its payload being what `write` appends.
pub fn encode_with(buf: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    write(buf);
    let payload = &buf[start + HEADER..];
    let (len, crc) = (payload.len() as u32, crc32fast::hash(payload));
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// Appends the postcard encoding of `value` to `out`.
pub fn postcard_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    *out = postcard::to_extend(value, std::mem::take(out)).expect("records always serialise");
}

/// Checks a payload against its checksum and decodes it with `decode`.
pub fn decode_with<T>(
    payload: &[u8],
    crc: u32,
    decode: impl Fn(&[u8]) -> Result<T, String>,
) -> Result<T, String> {
    check(payload, crc)?;
    decode(payload)
}

/// Decodes a postcard payload.
pub fn from_postcard<T: DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    postcard::from_bytes(payload).map_err(|e| e.to_string())
}

fn check(payload: &[u8], crc: u32) -> Result<(), String> {
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(())
}

/// Why reading stopped before the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A torn or damaged tail (short, impossible length, checksum mismatch): safe to cut off.
    Torn(String),
    /// A whole record (its checksum holds) that does not decode: another format, not damage.
    Undecodable(String),
}

impl Stop {
    /// The reason, for people.
    pub fn reason(&self) -> &str {
        match self {
            Stop::Torn(r) | Stop::Undecodable(r) => r,
        }
    }
}

/// Reads records until the end or the first bad one, calling `each(position, record)` for every
/// intact record. Returns where the intact records end and, if reading stopped early, why
/// (records are numbered from `first` in the message).
pub fn read_frames<T: DeserializeOwned>(
    reader: impl Read,
    max_len: u32,
    first: u64,
    each: impl FnMut(u64, T),
) -> std::io::Result<(u64, Option<Stop>)> {
    read_frames_with(reader, max_len, first, from_postcard, each)
}

/// [`read_frames`] with `decode` turning each payload into a record.
pub fn read_frames_with<T>(
    mut reader: impl Read,
    max_len: u32,
    first: u64,
    decode: impl Fn(&[u8]) -> Result<T, String>,
    mut each: impl FnMut(u64, T),
) -> std::io::Result<(u64, Option<Stop>)> {
    let torn = |s: String| Some(Stop::Torn(s));
    let mut pos = 0u64;
    let mut header = [0u8; HEADER];
    let mut payload = Vec::new();
    let mut n = first;
    loop {
        match read_full(&mut reader, &mut header)? {
            0 => return Ok((pos, None)),
            got if got < HEADER => return Ok((pos, torn(format!("record {n} has a torn header")))),
            _ => {}
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len == 0 || len > max_len {
            return Ok((
                pos,
                torn(format!("record {n} has an impossible length {len}")),
            ));
        }
        payload.resize(len as usize, 0);
        if read_full(&mut reader, &mut payload)? < len as usize {
            return Ok((pos, torn(format!("record {n} is cut short"))));
        }
        if let Err(e) = check(&payload, crc) {
            return Ok((pos, torn(format!("record {n} is corrupt: {e}"))));
        }
        match decode(&payload) {
            Ok(record) => each(pos, record),
            Err(e) => {
                return Ok((
                    pos,
                    Some(Stop::Undecodable(format!(
                        "record {n} passes its checksum but does not decode ({e}): written by another version of the format?"
                    ))),
                ));
            }
        }
        pos += (HEADER + len as usize) as u64;
        n += 1;
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}
