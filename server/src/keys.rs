//! The server's ed25519 signing key, in Synapse's file format (`ed25519 <version> <seed>`,
//! unpadded base64), so a key moved over from Synapse keeps the server's identity.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngExt;
use ruma::signatures::Ed25519KeyPair;

use crate::error::{Error, Result};

pub struct SigningKey {
    pub version: String,
    pub pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(ed25519:{})", self.version)
    }
}

/// PKCS#8 v1 prefix for a bare ed25519 seed (RFC 8410): lets ruma load a Synapse seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl SigningKey {
    pub fn public_key_base64(&self) -> String {
        STANDARD_NO_PAD.encode(self.pair.public_key())
    }

    pub fn from_seed(version: &str, seed: &[u8; 32]) -> Result<SigningKey> {
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let pair = Ed25519KeyPair::from_der(&der, version.to_string())
            .map_err(|e| Error::internal(format!("signing key: {e}")))?;
        Ok(SigningKey { version: version.to_string(), pair })
    }

    /// Parse the first `ed25519` line of a Synapse-format key file.
    pub fn parse(text: &str) -> Result<SigningKey> {
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            if let (Some("ed25519"), Some(version), Some(seed)) =
                (parts.next(), parts.next(), parts.next())
            {
                let bytes = STANDARD_NO_PAD
                    .decode(seed.trim_end_matches('='))
                    .map_err(|e| Error::internal(format!("signing key is not base64: {e}")))?;
                let seed: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| Error::internal("signing key seed is not 32 bytes"))?;
                return SigningKey::from_seed(version, &seed);
            }
        }
        Err(Error::internal("no `ed25519 <version> <key>` line in signing key file"))
    }

    pub fn load(path: &Path) -> Result<SigningKey> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))?;
        SigningKey::parse(&text).map_err(|e| Error::internal(format!("{}: {e}", path.display())))
    }

    /// Load the key, generating and writing a new one (mode 0600) if the file is missing.
    pub fn load_or_generate(path: &Path) -> Result<SigningKey> {
        if path.exists() {
            return SigningKey::load(path);
        }
        let (line, key) = generate()?;
        write_private_file(path, &line)?;
        tracing::info!(path = %path.display(), version = %key.version, "generated signing key");
        Ok(key)
    }
}

/// A new key and its file line.
pub fn generate() -> Result<(String, SigningKey)> {
    let mut rng = rand::rng();
    let seed: [u8; 32] = rng.random();
    let version: String = format!(
        "a_{}",
        (0..4).map(|_| rng.sample(rand::distr::Alphanumeric) as char).collect::<String>()
    );
    let key = SigningKey::from_seed(&version, &seed)?;
    Ok((format!("ed25519 {version} {}\n", STANDARD_NO_PAD.encode(seed)), key))
}

/// Write a secret (key, shared secret) readable by the owner only.
pub fn write_private_file(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))?;
    f.write_all(contents.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synapse_format_round_trips() {
        let (line, key) = generate().expect("generate");
        let again = SigningKey::parse(&line).expect("parse");
        assert_eq!(again.version, key.version);
        assert_eq!(again.public_key_base64(), key.public_key_base64());
    }

    #[test]
    fn rfc8032_test_vector_1_public_key() {
        // RFC 8032 section 7.1, TEST 1: seed -> public key.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .expect("hex")
                .try_into()
                .expect("32 bytes");
        let key = SigningKey::from_seed("a_test", &seed).expect("key");
        assert_eq!(
            hex::encode(key.pair.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(SigningKey::parse("ed25519 a_x notbase64!").is_err());
        assert!(SigningKey::parse("").is_err());
    }
}
