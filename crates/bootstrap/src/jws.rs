//! Detached JWS (RFC 7515, HS256) as kubeadm and the bootstrap signer write it:
//! header `{"alg":"HS256","kid":"<token-id>"}`, key = the token secret, payload removed.

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The detached JWS of `content` signed with token `id` and `secret`: `<header>..<signature>`.
pub fn sign_detached(content: &str, id: &str, secret: &str) -> String {
    let header = B64.encode(format!(r#"{{"alg":"HS256","kid":"{id}"}}"#));
    let payload = B64.encode(content);
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(format!("{header}.{payload}").as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    format!("{header}..{sig}")
}

/// Whether `detached` is the signature of `content` by token `id`/`secret`. The comparison
/// is constant-time (kubeadm compares plainly; nothing is lost by doing better).
pub fn verify_detached(detached: &str, content: &str, id: &str, secret: &str) -> bool {
    let want = sign_detached(content, id, secret);
    want.as_bytes().ct_eq(detached.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENTENCE: &str = "Hello from the other side. I must have called a thousand times.";

    #[test]
    fn vectors_from_kubernetes_jws_test() {
        for (content, secret, want) in [
            (
                SENTENCE,
                "my voice is my passcode",
                "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8",
            ),
            (
                "",
                "my voice is my passcode",
                "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..7Ui1ALizW4jXphVUB7xUqC9vLYLL9RZeOFfVLoB7Tgk",
            ),
            (
                SENTENCE,
                "",
                "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..UfkqvDGiIFxrMnFseDj9LYJOLNrvjW8aHhF71mvvAs8",
            ),
        ] {
            assert_eq!(sign_detached(content, "joshua", secret), want);
        }
    }

    #[test]
    fn verification_rejects_any_change() {
        let good =
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8";
        assert!(verify_detached(
            good,
            SENTENCE,
            "joshua",
            "my voice is my passcode"
        ));
        assert!(!verify_detached(
            &format!("{good}foo"),
            SENTENCE,
            "joshua",
            "my voice is my passcode"
        ));
        assert!(!verify_detached(
            good,
            &format!("{SENTENCE} "),
            "joshua",
            "my voice is my passcode"
        ));
        assert!(!verify_detached(
            good,
            SENTENCE,
            "joshub",
            "my voice is my passcode"
        ));
    }

    #[test]
    fn extra_kubeconfig_vector() {
        let content = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0E=\n    server: https://10.0.0.1:6443\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {}\nusers: null\n";
        assert_eq!(
            sign_detached(content, "abcdef", "0123456789abcdef"),
            "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9..e4FYNivLzi8714KFCU7ptUPcCrJxQSMKt-ZyPOu5I7I"
        );
    }
}
