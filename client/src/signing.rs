//! The API's request signing, defined once: what a client signs and what the gateway checks.
//!
//! A private request carries its API key in the [`KEY_HEADER`] header and, in the query string,
//! `timestamp`, an optional `recvWindow` and `signature`: the lowercase hex HMAC-SHA256, keyed
//! with the key's secret, of [`payload`] (`METHOD \n PATH \n QUERY \n BODY`, the query without
//! its `signature` parameter).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header carrying the API key id.
pub const KEY_HEADER: &str = "x-api-key";

/// HMAC-SHA256 of `payload` under `secret`, as lowercase hex.
pub fn sign(secret: &[u8], payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` (raw bytes) is the HMAC-SHA256 of `payload` under `secret`, compared
/// in constant time.
pub fn verify(secret: &[u8], payload: &[u8], signature: &[u8]) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(payload);
    mac.verify_slice(signature).is_ok()
}

/// What a request signs: `METHOD\nPATH\nQUERY\nBODY`.
pub fn payload(method: &str, path: &str, query: &str, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(method.len() + path.len() + query.len() + body.len() + 3);
    for part in [method.as_bytes(), path.as_bytes(), query.as_bytes()] {
        p.extend_from_slice(part);
        p.push(b'\n');
    }
    p.extend_from_slice(body);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_joins_its_parts_with_newlines_and_the_signature_is_hmac_sha256() {
        let p = payload("POST", "/orders", "timestamp=1", b"{}");
        assert_eq!(p, b"POST\n/orders\ntimestamp=1\n{}");
        // RFC 4231 test case 2.
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(sign(b"Jefe", b"what do ya want for nothing?"), expected);
        let raw = hex::decode(expected).unwrap();
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &raw));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", &raw));
        assert!(!verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &raw[..31]
        ));
    }
}
