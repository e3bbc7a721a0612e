//! The wallet the user already has: a Web3 Secret Storage keystore (geth, foundry, ethers,
//! eth-account) or a raw private key in the environment. The key never leaves this process.

use std::io::IsTerminal;
use std::path::Path;

use alloy_primitives::{keccak256, Address};
use k256::ecdsa::SigningKey;
use serde_json::Value;
use streamgate_core::eip191::personal_sign_digest;

use crate::config;
use crate::error::{CliError, Exit, Result};

pub struct Wallet {
    key: SigningKey,
    pub address: Address,
}

fn wallet_error(code: &str, message: impl Into<String>) -> CliError {
    CliError::new(Exit::Wallet, code, message)
}

impl Wallet {
    pub fn from_key_bytes(bytes: &[u8]) -> Result<Self> {
        let key = SigningKey::from_slice(bytes).map_err(|_| {
            wallet_error(
                "invalid_private_key",
                "the private key is not a valid secp256k1 key",
            )
        })?;
        let point = key.verifying_key().to_sec1_point(false);
        let hash = keccak256(&point.as_bytes()[1..]);
        let address = Address::from_slice(&hash[12..]);
        Ok(Self { key, address })
    }

    /// `0x`-prefixed or bare hex, 32 bytes.
    pub fn from_hex(text: &str) -> Result<Self> {
        let text = text.trim();
        let hex_part = text.strip_prefix("0x").unwrap_or(text);
        let bytes = hex::decode(hex_part)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                wallet_error(
                    "invalid_private_key",
                    "STREAMGATE_PRIVATE_KEY must be 32 bytes of hex (64 hex digits, 0x optional)",
                )
            })?;
        Self::from_key_bytes(&bytes)
    }

    /// Opens a keystore with `password`, or asks for it on the terminal.
    pub fn from_keystore(
        path: &Path,
        password: Option<String>,
        staging_dir: &Path,
    ) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            wallet_error(
                "keystore_unreadable",
                format!("cannot read the keystore {}: {e}", path.display()),
            )
        })?;
        let normalised = normalise_keystore(&text).map_err(|why| {
            wallet_error(
                "keystore_invalid",
                format!(
                    "{} is not a Web3 Secret Storage keystore: {why}",
                    path.display()
                ),
            )
        })?;
        let password = match password {
            Some(p) => p,
            None => ask_password(path)?,
        };
        // eth-keystore decrypts from a path only: it gets the checked, normalised copy, in the
        // config dir (0700) rather than a shared temp dir.
        let copy = staging_dir.join(format!(".keystore-{}.json", std::process::id()));
        let decrypted = config::write_private(staging_dir, &copy, normalised.as_bytes())
            .map_err(|e| {
                wallet_error(
                    "keystore_unreadable",
                    format!(
                        "cannot stage the keystore in {}: {e}",
                        staging_dir.display()
                    ),
                )
            })
            .and_then(|()| {
                eth_keystore::decrypt_key(&copy, password.as_bytes()).map_err(|e| match e {
                    eth_keystore::KeystoreError::MacMismatch => wallet_error(
                        "wrong_password",
                        format!("wrong password for the keystore {}", path.display()),
                    )
                    .with_hint("type it again, or check STREAMGATE_KEYSTORE_PASSWORD"),
                    other => wallet_error(
                        "keystore_invalid",
                        format!("cannot decrypt {}: {other}", path.display()),
                    ),
                })
            });
        let _ = std::fs::remove_file(&copy);
        let wallet = Self::from_key_bytes(&decrypted?)?;
        if let Some(named) = keystore_address(&normalised) {
            if named != wallet.address {
                return Err(wallet_error(
                    "keystore_invalid",
                    format!(
                        "the keystore names {named} but its key is {}",
                        wallet.address
                    ),
                ));
            }
        }
        Ok(wallet)
    }

    /// EIP-191 `personal_sign`: 65 bytes r ‖ s ‖ v (27/28), s low as EIP-2 asks.
    pub fn sign_personal(&self, message: &[u8]) -> String {
        let digest = personal_sign_digest(message);
        let (sig, recid) = self.key.sign_prehash_recoverable(digest.as_slice());
        let mut out = sig.to_bytes().to_vec();
        out.push(27 + recid.to_byte());
        format!("0x{}", hex::encode(out))
    }
}

fn ask_password(path: &Path) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(wallet_error(
            "password_required",
            format!("the keystore {} needs a password", path.display()),
        )
        .with_hint("set STREAMGATE_KEYSTORE_PASSWORD, or run on a terminal to be asked"));
    }
    rpassword::prompt_password(format!("Password for {}: ", path.display())).map_err(|e| {
        wallet_error(
            "password_required",
            format!("cannot read the password: {e}"),
        )
    })
}

/// Checks the fields eth-keystore would otherwise panic on, and renames ethers' and old Mist's
/// `Crypto` to the `crypto` the spec and eth-keystore use.
fn normalise_keystore(text: &str) -> std::result::Result<String, String> {
    let mut doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let obj = doc.as_object_mut().ok_or("not a JSON object")?;
    if !obj.contains_key("crypto") {
        if let Some(c) = obj.remove("Crypto") {
            obj.insert("crypto".into(), c);
        }
    }
    let crypto = obj.get("crypto").ok_or("no `crypto` section")?;
    if obj.get("version").and_then(Value::as_u64) != Some(3) {
        return Err("only version 3 keystores are supported".into());
    }
    if crypto.get("cipher").and_then(Value::as_str) != Some("aes-128-ctr") {
        return Err("the cipher is not aes-128-ctr".into());
    }
    let iv = crypto
        .pointer("/cipherparams/iv")
        .and_then(Value::as_str)
        .unwrap_or("");
    if iv.len() != 32 {
        return Err("cipherparams.iv is not 16 bytes of hex".into());
    }
    if crypto.pointer("/kdfparams/dklen").and_then(Value::as_u64) != Some(32) {
        return Err("kdfparams.dklen is not 32".into());
    }
    let n = crypto.pointer("/kdfparams/n").and_then(Value::as_u64);
    if n.is_some_and(|n| !n.is_power_of_two() || n < 2) {
        return Err("scrypt n is not a power of two".into());
    }
    Ok(doc.to_string())
}

fn keystore_address(normalised: &str) -> Option<Address> {
    let doc: Value = serde_json::from_str(normalised).ok()?;
    let text = doc.get("address")?.as_str()?;
    let hex_part = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(hex_part).ok().filter(|b| b.len() == 20)?;
    Some(Address::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anvil_key_signs_as_its_address() {
        let w =
            Wallet::from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap();
        assert_eq!(
            w.address.to_checksum(None),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        let sig = w.sign_personal(b"hello");
        let bytes = hex::decode(&sig[2..]).unwrap();
        let signer =
            streamgate_core::eip191::recover_personal_sign(b"hello", &bytes).expect("recovers");
        assert_eq!(signer, w.address);
    }

    #[test]
    fn bad_keys_are_wallet_errors() {
        for bad in ["", "0x12", &"zz".repeat(32), &"00".repeat(32)] {
            let e = Wallet::from_hex(bad).err().expect("refused");
            assert_eq!(e.exit, Exit::Wallet, "{bad}");
        }
    }

    #[test]
    fn keystore_shapes_are_checked_before_decryption() {
        assert!(normalise_keystore("[]").is_err());
        assert!(normalise_keystore(r#"{"version":3,"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"00"},"kdfparams":{"dklen":32}}}"#).is_err());
        let ethers = r#"{"version":3,"Crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"000102030405060708090a0b0c0d0e0f"},"kdfparams":{"dklen":32,"n":1024}}}"#;
        let out: Value = serde_json::from_str(&normalise_keystore(ethers).unwrap()).unwrap();
        assert!(out.get("crypto").is_some() && out.get("Crypto").is_none());
    }
}
