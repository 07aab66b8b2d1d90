//! AES-256-GCM for credentials at rest. Each value gets a fresh random 96-bit nonce; the
//! stored form is `v1:<key fingerprint>:<base64(nonce || ciphertext)>`, so a value encrypted
//! under a previous key can still be decrypted after rotation (keep the old key in the
//! keyring until everything is re-encrypted).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("encryption key must be 32 bytes")]
    BadKey,
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("no key in the keyring matches this ciphertext")]
    UnknownKey,
    #[error("ciphertext failed authentication")]
    Tampered,
}

#[derive(Clone)]
struct Key {
    fingerprint: String,
    cipher: Aes256Gcm,
}

/// The current key (encrypts and decrypts) plus previous keys (decrypt only).
#[derive(Clone)]
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

fn key(bytes: &[u8]) -> Result<Key, CryptoError> {
    if bytes.len() != 32 {
        return Err(CryptoError::BadKey);
    }
    let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| CryptoError::BadKey)?;
    let fingerprint = hex::encode(&Sha256::digest(bytes)[..4]);
    Ok(Key {
        fingerprint,
        cipher,
    })
}

impl Keyring {
    pub fn new(current: &[u8], previous: &[Vec<u8>]) -> Result<Self, CryptoError> {
        Ok(Keyring {
            current: key(current)?,
            previous: previous.iter().map(|k| key(k)).collect::<Result<_, _>>()?,
        })
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .current
            .cipher
            .encrypt(&Nonce::from(nonce), plaintext)
            .map_err(|_| CryptoError::Malformed)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!(
            "v1:{}:{}",
            self.current.fingerprint,
            base64::engine::general_purpose::STANDARD.encode(blob)
        ))
    }

    pub fn decrypt(&self, stored: &str) -> Result<Vec<u8>, CryptoError> {
        let mut parts = stored.splitn(3, ':');
        let (Some("v1"), Some(fp), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.fingerprint == fp)
            .ok_or(CryptoError::UnknownKey)?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| CryptoError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
        key.cipher
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| CryptoError::Tampered)
    }

    /// Re-encrypts a value under the current key (for key rotation).
    pub fn reencrypt(&self, stored: &str) -> Result<String, CryptoError> {
        self.encrypt(&self.decrypt(stored)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces() {
        let k = Keyring::new(&[1u8; 32], &[]).expect("key");
        let a = k.encrypt(b"secret").expect("enc");
        let b = k.encrypt(b"secret").expect("enc");
        assert_ne!(a, b, "nonce must be random per value");
        assert!(!a.contains("secret"));
        assert_eq!(k.decrypt(&a).expect("dec"), b"secret");
    }

    #[test]
    fn tampering_and_wrong_keys_are_detected() {
        let k = Keyring::new(&[1u8; 32], &[]).expect("key");
        let c = k.encrypt(b"secret").expect("enc");
        let mut bytes = c.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("utf8");
        assert_eq!(k.decrypt(&tampered), Err(CryptoError::Tampered));
        let other = Keyring::new(&[2u8; 32], &[]).expect("key");
        assert_eq!(other.decrypt(&c), Err(CryptoError::UnknownKey));
        assert_eq!(k.decrypt("garbage"), Err(CryptoError::Malformed));
        assert_eq!(
            Keyring::new(&[1u8; 16], &[]).err(),
            Some(CryptoError::BadKey)
        );
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Keyring::new(&[1u8; 32], &[]).expect("key");
        let c = old.encrypt(b"secret").expect("enc");
        let rotated = Keyring::new(&[2u8; 32], &[vec![1u8; 32]]).expect("key");
        assert_eq!(rotated.decrypt(&c).expect("dec"), b"secret");
        let re = rotated.reencrypt(&c).expect("re");
        assert_eq!(
            Keyring::new(&[2u8; 32], &[])
                .expect("key")
                .decrypt(&re)
                .expect("dec"),
            b"secret"
        );
    }
}
