//! Desk signatures: ed25519 over a context string, the desk id, a timestamp and the exact
//! request bytes. Binding the desk id and the time stops a signature being replayed under
//! another desk's name or long after it was made.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// What every signed message starts with.
pub const CONTEXT: &str = "bashu-alert-v1";

/// The bytes a desk signs: `bashu-alert-v1\n<desk_id>\n<timestamp>\n` then the body.
pub fn signed_message(desk_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{CONTEXT}\n{desk_id}\n{timestamp}\n").into_bytes();
    message.extend_from_slice(body);
    message
}

/// Signs a submission with a desk's 32-byte secret key (what a desk's client does).
pub fn sign(secret_key: &[u8; 32], desk_id: &str, timestamp: i64, body: &[u8]) -> [u8; 64] {
    SigningKey::from_bytes(secret_key).sign(&signed_message(desk_id, timestamp, body)).to_bytes()
}

/// A new desk key pair: (secret, public).
pub fn new_key_pair() -> ([u8; 32], [u8; 32]) {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the operating system's random source");
    let public = SigningKey::from_bytes(&secret).verifying_key().to_bytes();
    (secret, public)
}

/// Checks a desk's signature; the reason when it does not hold.
pub fn verify(
    public_key: &[u8],
    desk_id: &str,
    timestamp: i64,
    signature: &[u8],
    body: &[u8],
) -> Result<(), &'static str> {
    if public_key.is_empty() {
        return Err("the desk has no key: it was revoked or never issued");
    }
    let key: [u8; 32] = public_key.try_into().map_err(|_| "the desk's registered key is not an ed25519 key")?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| "the desk's registered key is not an ed25519 key")?;
    let signature: [u8; 64] = signature.try_into().map_err(|_| "the signature is not 64 bytes")?;
    key.verify_strict(&signed_message(desk_id, timestamp, body), &Signature::from_bytes(&signature))
        .map_err(|_| "the signature does not verify")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_desk_time_and_bytes() {
        let (secret, public) = new_key_pair();
        let signature = sign(&secret, "mianyang", 1_795_800_000, b"<alert/>");
        assert!(verify(&public, "mianyang", 1_795_800_000, &signature, b"<alert/>").is_ok());
        assert!(verify(&public, "mianyang", 1_795_800_000, &signature, b"<alert />").is_err());
        assert!(verify(&public, "sc-provincial", 1_795_800_000, &signature, b"<alert/>").is_err());
        assert!(verify(&public, "mianyang", 1_795_800_001, &signature, b"<alert/>").is_err());
        let (_, other) = new_key_pair();
        assert!(verify(&other, "mianyang", 1_795_800_000, &signature, b"<alert/>").is_err());
    }
}
