//! AES-256-GCM for credentials at rest. Each value gets a fresh random 96-bit nonce; the
//! stored form is `v2:<key fingerprint>:<base64(nonce || ciphertext)>`, authenticated with
//! associated data that names what the value belongs to ([`account_aad`]), so a ciphertext
//! copied to another account's row fails to decrypt. A value encrypted under a previous key
//! can still be decrypted after rotation (keep the old key in the keyring until
//! `spot-optimizer rotate-secrets` has re-encrypted everything). Values written before
//! associated data existed (`v1:`, no AAD) are still read, and re-encrypted as `v2:` on
//! rotation.

use aes_gcm::aead::{Aead, KeyInit, Payload};
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

/// Associated data binding a stored credential to the account row that owns it.
pub fn account_aad(account_id: &str) -> Vec<u8> {
    format!("spot-optimizer:account-credentials:{account_id}").into_bytes()
}

/// Stored format versions: `v1` has no associated data (legacy, read only), `v2` has.
const V1: &str = "v1";
const V2: &str = "v2";

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

    fn seal(&self, version: &str, aad: &[u8], plaintext: &[u8]) -> Result<String, CryptoError> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .current
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Malformed)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!(
            "{version}:{}:{}",
            self.current.fingerprint,
            base64::engine::general_purpose::STANDARD.encode(blob)
        ))
    }

    /// Encrypts under the current key, bound to `aad` (e.g. [`account_aad`]).
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Result<String, CryptoError> {
        self.seal(V2, aad, plaintext)
    }

    /// Writes the legacy `v1` form (no associated data). Only for tests of the upgrade path.
    #[doc(hidden)]
    pub fn encrypt_legacy_v1(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        self.seal(V1, b"", plaintext)
    }

    /// Decrypts a stored value. `v2` values must have been encrypted with the same `aad`;
    /// legacy `v1` values carry none and are read as they are.
    pub fn decrypt(&self, aad: &[u8], stored: &str) -> Result<Vec<u8>, CryptoError> {
        let mut parts = stored.splitn(3, ':');
        let (Some(version), Some(fp), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let aad: &[u8] = match version {
            V2 => aad,
            V1 => b"",
            _ => return Err(CryptoError::Malformed),
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
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
            .map_err(|_| CryptoError::Tampered)
    }

    /// Whether a stored value is already in the current form (`v2` under the current key).
    pub fn is_current(&self, stored: &str) -> bool {
        let mut parts = stored.splitn(3, ':');
        parts.next() == Some(V2) && parts.next() == Some(self.current.fingerprint.as_str())
    }

    /// Re-encrypts a value under the current key, bound to `aad` (for key rotation and the
    /// upgrade of `v1` values).
    pub fn reencrypt(&self, aad: &[u8], stored: &str) -> Result<String, CryptoError> {
        self.encrypt(aad, &self.decrypt(aad, stored)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AAD: &[u8] = b"spot-optimizer:account-credentials:a1";

    #[test]
    fn round_trip_with_fresh_nonces() {
        let k = Keyring::new(&[1u8; 32], &[]).expect("key");
        let a = k.encrypt(AAD, b"secret").expect("enc");
        let b = k.encrypt(AAD, b"secret").expect("enc");
        assert_ne!(a, b, "nonce must be random per value");
        assert!(a.starts_with("v2:"));
        assert!(!a.contains("secret"));
        assert_eq!(k.decrypt(AAD, &a).expect("dec"), b"secret");
    }

    #[test]
    fn tampering_and_wrong_keys_are_detected() {
        let k = Keyring::new(&[1u8; 32], &[]).expect("key");
        let c = k.encrypt(AAD, b"secret").expect("enc");
        let mut bytes = c.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("utf8");
        assert_eq!(k.decrypt(AAD, &tampered), Err(CryptoError::Tampered));
        let other = Keyring::new(&[2u8; 32], &[]).expect("key");
        assert_eq!(other.decrypt(AAD, &c), Err(CryptoError::UnknownKey));
        assert_eq!(k.decrypt(AAD, "garbage"), Err(CryptoError::Malformed));
        assert_eq!(
            k.decrypt(AAD, &c.replacen("v2:", "v9:", 1)),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            Keyring::new(&[1u8; 16], &[]).err(),
            Some(CryptoError::BadKey)
        );
    }

    #[test]
    fn a_ciphertext_is_bound_to_its_account() {
        let k = Keyring::new(&[1u8; 32], &[]).expect("key");
        let c = k.encrypt(&account_aad("a1"), b"secret").expect("enc");
        assert_eq!(k.decrypt(&account_aad("a1"), &c).expect("dec"), b"secret");
        assert_eq!(
            k.decrypt(&account_aad("a2"), &c),
            Err(CryptoError::Tampered),
            "moved to another account"
        );
        // Downgrading the version tag to the AAD-less form does not help either.
        assert_eq!(
            k.decrypt(&account_aad("a2"), &c.replacen("v2:", "v1:", 1)),
            Err(CryptoError::Tampered)
        );
    }

    #[test]
    fn legacy_values_without_aad_are_read_and_upgraded() {
        let k = Keyring::new(&[1u8; 32], &[]).expect("key");
        let legacy = k.encrypt_legacy_v1(b"secret").expect("enc");
        assert!(legacy.starts_with("v1:"));
        assert!(!k.is_current(&legacy));
        assert_eq!(k.decrypt(AAD, &legacy).expect("dec"), b"secret");
        let up = k.reencrypt(AAD, &legacy).expect("re");
        assert!(up.starts_with("v2:") && k.is_current(&up));
        assert_eq!(k.decrypt(AAD, &up).expect("dec"), b"secret");
        assert_eq!(
            k.decrypt(b"another account", &up),
            Err(CryptoError::Tampered)
        );
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Keyring::new(&[1u8; 32], &[]).expect("key");
        let c = old.encrypt(AAD, b"secret").expect("enc");
        let rotated = Keyring::new(&[2u8; 32], &[vec![1u8; 32]]).expect("key");
        assert!(!rotated.is_current(&c));
        assert_eq!(rotated.decrypt(AAD, &c).expect("dec"), b"secret");
        let re = rotated.reencrypt(AAD, &c).expect("re");
        assert!(rotated.is_current(&re));
        let only_new = Keyring::new(&[2u8; 32], &[]).expect("key");
        assert_eq!(only_new.decrypt(AAD, &re).expect("dec"), b"secret");
        assert_eq!(only_new.decrypt(AAD, &c), Err(CryptoError::UnknownKey));
    }
}
