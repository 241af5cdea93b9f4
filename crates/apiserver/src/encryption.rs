//! Encryption at rest (`--encryption-provider-config`, Kubernetes' EncryptionConfiguration):
//! Secrets are stored encrypted with the first provider, with Kubernetes' value prefix
//! `k8s:enc:<provider>:v1:<key name>:`, and read with any listed provider. `identity` reads
//! and writes plaintext. The store never sees a plaintext Secret unless `identity` is first.

use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use base64::Engine;
use bytes::Bytes;
use kubeboot_store::{BoxFuture, KeyValue, ListPage, Revision, Store, StoreError, WatchStream};
use serde::Deserialize;

/// One provider, with its keys in order.
#[derive(Clone)]
enum Provider {
    AesCbc(Vec<(String, [u8; 32])>),
    AesGcm(Vec<(String, [u8; 32])>),
    Secretbox(Vec<(String, [u8; 32])>),
    Identity,
}

/// The providers for Secrets.
#[derive(Clone)]
pub struct Encryption {
    providers: Vec<Provider>,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encryption(<keys redacted>)")
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    kind: String,
    resources: Vec<ResourceConfig>,
}

#[derive(Deserialize)]
struct ResourceConfig {
    resources: Vec<String>,
    providers: Vec<serde_json::Value>,
}

impl Encryption {
    /// Parses an EncryptionConfiguration; only the entry covering `secrets` is used.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let cfg: ConfigFile = serde_saphyr::from_str(yaml)
            .map_err(|e| format!("the encryption config is not valid YAML: {e}"))?;
        if cfg.kind != "EncryptionConfiguration" {
            return Err(format!(
                "the encryption config has kind {:?}, not EncryptionConfiguration",
                cfg.kind
            ));
        }
        let entry = cfg
            .resources
            .iter()
            .find(|r| {
                r.resources
                    .iter()
                    .any(|x| x == "secrets" || x == "*.*" || x == "*.")
            })
            .ok_or("the encryption config has no entry for secrets")?;
        let mut providers = Vec::new();
        for p in &entry.providers {
            let obj = p
                .as_object()
                .ok_or("an encryption provider is not a mapping")?;
            let (name, body) = obj.iter().next().ok_or("an encryption provider is empty")?;
            let keys = || -> Result<Vec<(String, [u8; 32])>, String> {
                let list = body
                    .get("keys")
                    .and_then(serde_json::Value::as_array)
                    .ok_or(format!("provider {name} has no keys"))?;
                list.iter()
                    .map(|k| {
                        let kname = k
                            .get("name")
                            .and_then(serde_json::Value::as_str)
                            .ok_or(format!("a {name} key has no name"))?;
                        let secret = k
                            .get("secret")
                            .and_then(serde_json::Value::as_str)
                            .ok_or(format!("{name} key {kname} has no secret"))?;
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(secret)
                            .map_err(|_| format!("{name} key {kname} is not base64"))?;
                        let arr: [u8; 32] = raw.try_into().map_err(|_| {
                            format!("{name} key {kname} must be 32 bytes (AES-256)")
                        })?;
                        Ok((kname.to_owned(), arr))
                    })
                    .collect()
            };
            providers.push(match name.as_str() {
                "aescbc" => Provider::AesCbc(keys()?),
                "aesgcm" => Provider::AesGcm(keys()?),
                "secretbox" => Provider::Secretbox(keys()?),
                "identity" => Provider::Identity,
                other => return Err(format!("encryption provider {other:?} is not supported (aescbc, aesgcm, secretbox, identity)")),
            });
        }
        if providers.is_empty() {
            return Err("the encryption config lists no provider for secrets".into());
        }
        Ok(Self { providers })
    }

    /// Encrypts a value with the first provider's first key.
    pub fn encrypt(&self, key: &str, plain: &[u8]) -> Result<Vec<u8>, String> {
        match &self.providers[0] {
            Provider::Identity => Ok(plain.to_vec()),
            Provider::AesCbc(keys) => {
                let (name, k) = keys.first().ok_or("aescbc has no key")?;
                let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(
                    UnboundCipherKey::new(&AES_256, k).map_err(|e| e.to_string())?,
                )
                .map_err(|e| e.to_string())?;
                let mut buf = plain.to_vec();
                let ctx = cipher.encrypt(&mut buf).map_err(|e| e.to_string())?;
                let iv: &[u8] = match &ctx {
                    DecryptionContext::Iv128(iv) => iv.as_ref(),
                    _ => return Err("unexpected AES-CBC context".into()),
                };
                let mut out = format!("k8s:enc:aescbc:v1:{name}:").into_bytes();
                out.extend_from_slice(iv);
                out.extend_from_slice(&buf);
                Ok(out)
            }
            Provider::Secretbox(keys) => {
                use crypto_secretbox::aead::{Aead, KeyInit, generic_array::GenericArray};
                let (name, k) = keys.first().ok_or("secretbox has no key")?;
                let mut nonce = [0u8; 24];
                kubeboot_api::random::Random::fill(&kubeboot_api::random::OsRandom, &mut nonce);
                let sealed = crypto_secretbox::XSalsa20Poly1305::new(GenericArray::from_slice(k))
                    .encrypt(GenericArray::from_slice(&nonce), plain)
                    .map_err(|_| "secretbox sealing failed".to_owned())?;
                let mut out = format!("k8s:enc:secretbox:v1:{name}:").into_bytes();
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                Ok(out)
            }
            Provider::AesGcm(keys) => {
                let (name, k) = keys.first().ok_or("aesgcm has no key")?;
                let aead =
                    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k).map_err(|e| e.to_string())?);
                let mut nonce = [0u8; NONCE_LEN];
                kubeboot_api::random::Random::fill(&kubeboot_api::random::OsRandom, &mut nonce);
                let mut buf = plain.to_vec();
                aead.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(key.as_bytes()),
                    &mut buf,
                )
                .map_err(|e| e.to_string())?;
                let mut out = format!("k8s:enc:aesgcm:v1:{name}:").into_bytes();
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&buf);
                Ok(out)
            }
        }
    }

    /// Decrypts a stored value with whichever listed provider and key wrote it.
    pub fn decrypt(&self, key: &str, stored: &[u8]) -> Result<Vec<u8>, String> {
        let Some(rest) = stored.strip_prefix(b"k8s:enc:") else {
            return if self
                .providers
                .iter()
                .any(|p| matches!(p, Provider::Identity))
            {
                Ok(stored.to_vec())
            } else {
                Err(format!(
                    "{key} is stored unencrypted and the identity provider is not listed"
                ))
            };
        };
        let text = String::from_utf8_lossy(&rest[..rest.len().min(300)]).into_owned();
        let mut parts = text.splitn(4, ':');
        let (provider, version, name) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let header = format!("{provider}:{version}:{name}:").len();
        let body = rest
            .get(header..)
            .ok_or(format!("{key}: truncated encrypted value"))?;
        let find =
            |keys: &Vec<(String, [u8; 32])>| keys.iter().find(|(n, _)| n == name).map(|(_, k)| *k);
        for p in &self.providers {
            let (keys, open): (_, Opener) = match (p, provider) {
                (Provider::AesCbc(keys), "aescbc") => (keys, open_aescbc),
                (Provider::Secretbox(keys), "secretbox") => (keys, open_secretbox),
                (Provider::AesGcm(keys), "aesgcm") => (keys, open_aesgcm),
                _ => continue,
            };
            let Some(k) = find(keys) else { continue };
            return open(&k, body, key).ok_or_else(|| {
                format!("{key}: cannot decrypt with {provider} key {name:?} (a wrong key, or a truncated value)")
            });
        }
        Err(format!(
            "{key} is encrypted with {provider} key {name:?}, which the encryption config does not list"
        ))
    }
}

/// A store that encrypts the values under `/registry/secrets/`.
pub struct EncryptingStore {
    inner: Arc<dyn Store>,
    enc: Arc<Encryption>,
}

const PREFIX: &str = "/registry/secrets/";

impl EncryptingStore {
    /// Wraps a store.
    pub fn new(inner: Arc<dyn Store>, enc: Encryption) -> Self {
        Self {
            inner,
            enc: Arc::new(enc),
        }
    }

    fn seal(&self, key: &str, value: Bytes) -> Result<Bytes, StoreError> {
        if key.starts_with(PREFIX) {
            self.enc
                .encrypt(key, &value)
                .map(Bytes::from)
                .map_err(StoreError::Backend)
        } else {
            Ok(value)
        }
    }

    fn open_page(&self, mut page: ListPage) -> Result<ListPage, StoreError> {
        page.items = page
            .items
            .into_iter()
            .map(|kv| Self::open(&self.enc, kv))
            .collect::<Result<_, _>>()?;
        Ok(page)
    }

    fn open(enc: &Encryption, mut kv: KeyValue) -> Result<KeyValue, StoreError> {
        if kv.key.starts_with(PREFIX) {
            kv.value = enc
                .decrypt(&kv.key, &kv.value)
                .map(Bytes::from)
                .map_err(StoreError::Backend)?;
        }
        Ok(kv)
    }
}

impl Store for EncryptingStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        Box::pin(async move {
            self.inner
                .get(key)
                .await?
                .map(|kv| Self::open(&self.enc, kv))
                .transpose()
        })
    }

    fn get_with_revision<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(Option<KeyValue>, Revision), StoreError>> {
        Box::pin(async move {
            let (kv, revision) = self.inner.get_with_revision(key).await?;
            let kv = kv.map(|kv| Self::open(&self.enc, kv)).transpose()?;
            Ok((kv, revision))
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        Box::pin(async move {
            let page = self.inner.list(prefix, start_after, limit).await?;
            self.open_page(page)
        })
    }

    fn list_at<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        Box::pin(async move {
            let page = self
                .inner
                .list_at(prefix, start_after, limit, revision)
                .await?;
            self.open_page(page)
        })
    }

    fn count<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.count(prefix)
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let kv = self
                .inner
                .create(key, self.seal(key, value.clone())?)
                .await?;
            Ok(KeyValue { value, ..kv })
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let kv = self
                .inner
                .update(key, self.seal(key, value.clone())?, expected)
                .await?;
            Ok(KeyValue { value, ..kv })
        })
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move { Self::open(&self.enc, self.inner.delete(key, expected).await?) })
    }

    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        after: Revision,
    ) -> BoxFuture<'a, Result<WatchStream, StoreError>> {
        Box::pin(async move {
            let mut inner = self.inner.watch(prefix, after).await?;
            let (tx, rx) = tokio::sync::mpsc::channel(1024);
            let enc = self.enc.clone();
            tokio::spawn(async move {
                while let Some(ev) = inner.recv().await {
                    let ev = ev.and_then(|mut e| {
                        if let Some(prev) = e.prev.take() {
                            let old = KeyValue {
                                value: prev,
                                ..e.kv.clone()
                            };
                            e.prev = Some(Self::open(&enc, old)?.value);
                        }
                        e.kv = Self::open(&enc, e.kv)?;
                        Ok(e)
                    });
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            });
            Ok(rx)
        })
    }

    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>> {
        self.inner.revision()
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.compact(revision)
    }

    fn reads_locally(&self) -> bool {
        self.inner.reads_locally()
    }
}

/// Rewrites every Secret with the current first provider (after a key rotation).
pub async fn rewrite_secrets(store: &EncryptingStore) -> Result<usize, StoreError> {
    let mut n = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.list(PREFIX, after.as_deref(), Some(500)).await?;
        for kv in &page.items {
            match store
                .update(&kv.key, kv.value.clone(), Some(kv.mod_revision))
                .await
            {
                Ok(_) => n += 1,
                Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => {} // changed meanwhile: already rewritten
                Err(e) => return Err(e),
            }
        }
        after = page.items.last().map(|kv| kv.key.clone());
        if !page.more {
            return Ok(n);
        }
    }
}

/// Decrypts a value's body with a key; `None` when it does not decrypt. `aad` is the
/// storage key (authenticated by aesgcm).
type Opener = fn(&[u8; 32], &[u8], &str) -> Option<Vec<u8>>;

/// aescbc: a 16-byte IV, then AES-256-CBC with PKCS#7 padding.
fn open_aescbc(k: &[u8; 32], body: &[u8], _aad: &str) -> Option<Vec<u8>> {
    if body.len() < 16 {
        return None;
    }
    let (iv, ct) = body.split_at(16);
    let cipher =
        PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, k).ok()?).ok()?;
    let mut buf = ct.to_vec();
    let iv: [u8; 16] = iv.try_into().ok()?;
    let plain = cipher
        .decrypt(&mut buf, DecryptionContext::Iv128(iv.into()))
        .ok()?;
    Some(plain.to_vec())
}

/// secretbox: a 24-byte nonce, then XSalsa20-Poly1305.
fn open_secretbox(k: &[u8; 32], body: &[u8], _aad: &str) -> Option<Vec<u8>> {
    use crypto_secretbox::aead::{Aead, KeyInit, generic_array::GenericArray};
    if body.len() < 24 {
        return None;
    }
    let (nonce, ct) = body.split_at(24);
    crypto_secretbox::XSalsa20Poly1305::new(GenericArray::from_slice(k))
        .decrypt(GenericArray::from_slice(nonce), ct)
        .ok()
}

/// aesgcm: a 12-byte nonce, then AES-256-GCM over the storage key as additional data.
fn open_aesgcm(k: &[u8; 32], body: &[u8], aad: &str) -> Option<Vec<u8>> {
    if body.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ct) = body.split_at(NONCE_LEN);
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k).ok()?);
    let mut buf = ct.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = aead
        .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(providers: &str) -> Encryption {
        Encryption::parse(&format!("kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n{providers}")).unwrap()
    }

    const K1: &str = "      - aescbc:\n          keys:\n            - name: key1\n              secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";
    const K2: &str = "      - aesgcm:\n          keys:\n            - name: key2\n              secret: ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n";
    const ID: &str = "      - identity: {}\n";

    #[test]
    fn round_trips_with_kubernetes_prefixes_and_rotates() {
        let key = "/registry/secrets/default/s";
        let plain = br#"{"data":{"token-secret":"c2VjcmV0"}}"#;
        let a = cfg(&format!("{K1}{ID}"));
        let sealed = a.encrypt(key, plain).unwrap();
        assert!(sealed.starts_with(b"k8s:enc:aescbc:v1:key1:"));
        assert!(!sealed.windows(8).any(|w| w == b"c2VjcmV0"), "no plaintext");
        assert_eq!(a.decrypt(key, &sealed).unwrap(), plain);
        assert_eq!(
            a.decrypt(key, plain).unwrap(),
            plain,
            "identity reads plaintext"
        );
        // Rotation: the new key second, then first; the old key still reads old values.
        let b = cfg(&format!("{K2}{K1}"));
        let sealed2 = b.encrypt(key, plain).unwrap();
        assert!(sealed2.starts_with(b"k8s:enc:aesgcm:v1:key2:"));
        assert_eq!(b.decrypt(key, &sealed).unwrap(), plain);
        assert_eq!(b.decrypt(key, &sealed2).unwrap(), plain);
        assert!(
            b.decrypt(key, plain).is_err(),
            "plaintext is refused without identity"
        );
        assert!(
            cfg(K1).decrypt(key, &sealed2).is_err(),
            "a missing key is an error, never plaintext"
        );
        assert!(
            b.decrypt("/registry/secrets/default/other", &sealed2)
                .is_err(),
            "GCM binds the value to its key"
        );
        assert!(Encryption::parse("kind: Nope\nresources: []").is_err());
        let sb = cfg(
            "      - secretbox:\n          keys:\n            - name: key3\n              secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
        );
        let sealed3 = sb.encrypt(key, plain).unwrap();
        assert!(sealed3.starts_with(b"k8s:enc:secretbox:v1:key3:"));
        assert_eq!(sb.decrypt(key, &sealed3).unwrap(), plain);
    }
}
