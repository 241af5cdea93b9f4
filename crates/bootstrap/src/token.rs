//! Token syntax: `<id>.<secret>`, `[a-z0-9]{6}.[a-z0-9]{16}`.

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;

/// Exactly six characters from `[a-z0-9]`. Public, safe to log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(String);

/// Exactly sixteen characters from `[a-z0-9]`. Secret: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

/// A whole bootstrap token. `Debug` shows only the id.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    /// The public id.
    pub id: TokenId,
    /// The secret.
    pub secret: TokenSecret,
}

/// Why a token string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The id is not six `[a-z0-9]` characters.
    #[error("the token id must be 6 characters from [a-z0-9]")]
    MalformedId,
    /// The secret is not sixteen `[a-z0-9]` characters.
    #[error("the token secret must be 16 characters from [a-z0-9]")]
    MalformedSecret,
    /// The token is not `<id>.<secret>` (kubeadm's words; what may be shown of it).
    #[error("the bootstrap token {0} was not of the form {TOKEN_PATTERN:?}")]
    Malformed(String),
}

/// The pattern a token matches, as kubeadm prints it (`BootstrapTokenPattern`).
pub const TOKEN_PATTERN: &str = r"\A([a-z0-9]{6})\.([a-z0-9]{16})\z";

/// The prefix of a token Secret's name.
pub const SECRET_NAME_PREFIX: &str = "bootstrap-token-";

fn alphabet_ok(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl TokenId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of a Secret named `bootstrap-token-<id>`.
    pub fn from_secret_name(name: &str) -> Option<Self> {
        name.strip_prefix(SECRET_NAME_PREFIX)?.parse().ok()
    }

    /// `bootstrap-token-<id>`.
    pub fn secret_name(&self) -> String {
        format!("{SECRET_NAME_PREFIX}{}", self.0)
    }
}

impl FromStr for TokenId {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, TokenError> {
        if alphabet_ok(s, 6) {
            Ok(Self(s.to_owned()))
        } else {
            Err(TokenError::MalformedId)
        }
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TokenSecret {
    /// The secret text; call only to write it where it belongs (a Secret, a kubeconfig).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a candidate secret.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl FromStr for TokenSecret {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, TokenError> {
        if alphabet_ok(s, 16) {
            Ok(Self(s.to_owned()))
        } else {
            Err(TokenError::MalformedSecret)
        }
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for BootstrapToken {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, TokenError> {
        let malformed = || TokenError::Malformed(redact_token_text(s));
        let (id, secret) = s.split_once('.').ok_or_else(malformed)?;
        Ok(Self {
            id: id.parse().map_err(|_| malformed())?,
            secret: secret.parse().map_err(|_| malformed())?,
        })
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.<redacted>", self.id)
    }
}

impl BootstrapToken {
    /// `<id>.<secret>`: for writing into a kubeconfig or printing a join command only.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.id.0, self.secret.0)
    }
}

/// What may be shown of a string that was meant to be a token, quoted: its id part at
/// most, or the whole of one too short to hold a secret (`"bogus"`).
fn redact_token_text(s: &str) -> String {
    match s.split_once('.') {
        Some((id, _)) if id.len() <= 6 => format!("{id:?}.<redacted>"),
        None if s.len() < 16 => format!("{s:?}"),
        _ => "<redacted>".to_owned(),
    }
}

/// Checks an extra group name against `system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]`.
pub fn valid_extra_group(g: &str) -> bool {
    let Some(rest) = g.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    let Some(last) = rest.bytes().last() else {
        return false;
    };
    rest.len() <= 256
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
}

/// The pattern extra groups must match, as Kubernetes prints it.
pub const EXTRA_GROUP_PATTERN: &str = r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_vectors_from_kubernetes() {
        for bad in [
            "",
            ".",
            "1234567890123456789012",
            "12345.1234567890123456",
            ".1234567890123456",
            "123456.",
            "123456:1234567890.123456",
            "abcdef:1234567890123456",
            "Abcdef.1234567890123456",
            "ABCDEF.abcdef0123456789",
            "123456.AABBCCDDEEFFGGHH",
            "123456.AABBCCD-EEFFGGHH",
            "abc*ef.1234567890123456",
        ] {
            assert!(
                bad.parse::<BootstrapToken>().is_err(),
                "{bad:?} must be refused"
            );
        }
        for good in [
            "abcdef.1234567890123456",
            "123456.aabbccddeeffgghh",
            "abcdef.abcdef0123456789",
            "123456.1234560123456789",
        ] {
            assert!(
                good.parse::<BootstrapToken>().is_ok(),
                "{good:?} must be accepted"
            );
        }
    }

    #[test]
    fn id_vectors_from_kubernetes() {
        for bad in [
            "",
            "1234567890123456789012",
            "12345",
            "Abcdef",
            "ABCDEF",
            "abcdef.",
        ] {
            assert!(bad.parse::<TokenId>().is_err(), "{bad:?}");
        }
        for good in ["abcdef", "123456"] {
            assert!(good.parse::<TokenId>().is_ok(), "{good:?}");
        }
    }

    #[test]
    fn secret_name_vectors_from_kubernetes() {
        assert_eq!(
            TokenId::from_secret_name("bootstrap-token-abc123").map(|i| i.to_string()),
            Some("abc123".to_owned())
        );
        for bad in [
            "",
            "abc123",
            "bootstrap-token-",
            "bootstrap-token-abc",
            "bootstrap-token-abc123ghi",
            "bootstrap-token-ABC123",
        ] {
            assert_eq!(TokenId::from_secret_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn group_vectors_from_kubernetes() {
        for good in [
            "system:bootstrappers:foo",
            "system:bootstrappers:foo:bar:baz",
            "system:bootstrappers:foo-bar-42",
        ] {
            assert!(valid_extra_group(good), "{good:?}");
        }
        let long = format!("system:bootstrappers:{}", "x".repeat(300));
        for bad in [
            "system:bootstrappers:Foo",
            "foo",
            "system:bootstrappers:",
            "system:bootstrappers: ",
            "system:bootstrappers:*",
            "system:bootstrappers:foo:",
            "system:bootstrappers:foo-",
            "system:bootstrappers:<x>",
            long.as_str(),
        ] {
            assert!(!valid_extra_group(bad), "{bad:?}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        let t: BootstrapToken = "abcdef.0123456789abcdef".parse().unwrap();
        assert_eq!(format!("{t:?}"), "abcdef.<redacted>");
        let e = "abcdef.0123456789ABCDEF"
            .parse::<BootstrapToken>()
            .unwrap_err();
        assert!(!e.to_string().contains("0123456789"), "{e}");
        // kubeadm's words, naming what may be shown.
        let e = "bogus".parse::<BootstrapToken>().unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"the bootstrap token "bogus" was not of the form "\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z""#
        );
        let e = "0123456789abcdef0".parse::<BootstrapToken>().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the bootstrap token <redacted> was"),
            "{e}"
        );
        assert!(t.secret.matches("0123456789abcdef"));
        assert!(!t.secret.matches("0123456789abcdee"));
    }
}

impl BootstrapToken {
    /// A new token drawn from `random` (`OsRandom` outside tests).
    pub fn random(random: &dyn kubeboot_api::random::Random) -> Self {
        Self::generate(|b| random.fill(b))
    }

    /// A new random token: 6 then 16 characters drawn uniformly from `[a-z0-9]` with `rng`
    /// (a cryptographic RNG filling bytes).
    pub fn generate(mut fill: impl FnMut(&mut [u8])) -> Self {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut draw = |n: usize| {
            let mut out = String::with_capacity(n);
            while out.len() < n {
                let mut b = [0u8; 1];
                fill(&mut b);
                // Rejection sampling keeps the draw uniform: 252 = 7 * 36.
                if b[0] < 252 {
                    out.push(ALPHABET[(b[0] % 36) as usize] as char);
                }
            }
            out
        };
        Self {
            id: TokenId(draw(6)),
            secret: TokenSecret(draw(16)),
        }
    }
}

#[cfg(test)]
mod generate_tests {
    use super::*;

    #[test]
    fn generated_tokens_parse() {
        let mut n = 0u8;
        let t = BootstrapToken::generate(|b| {
            for x in b.iter_mut() {
                n = n.wrapping_add(97);
                *x = n;
            }
        });
        assert!(t.expose().parse::<BootstrapToken>().is_ok(), "{t:?}");
    }
}
