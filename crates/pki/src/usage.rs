//! The usages of the Kubernetes CSR API (`spec.usages`), by their Kubernetes names, and
//! the X.509 extended key usage each stands for.

use rcgen::ExtendedKeyUsagePurpose;

/// The 23 usages of the Kubernetes CSR API, by their Kubernetes names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Usage {
    /// `signing`
    Signing,
    /// `digital signature`
    DigitalSignature,
    /// `content commitment`
    ContentCommitment,
    /// `key encipherment`
    KeyEncipherment,
    /// `key agreement`
    KeyAgreement,
    /// `data encipherment`
    DataEncipherment,
    /// `cert sign`
    CertSign,
    /// `crl sign`
    CrlSign,
    /// `encipher only`
    EncipherOnly,
    /// `decipher only`
    DecipherOnly,
    /// `any`
    Any,
    /// `server auth`
    ServerAuth,
    /// `client auth`
    ClientAuth,
    /// `code signing`
    CodeSigning,
    /// `email protection`
    EmailProtection,
    /// `s/mime`
    SMime,
    /// `ipsec end system`
    IpsecEndSystem,
    /// `ipsec tunnel`
    IpsecTunnel,
    /// `ipsec user`
    IpsecUser,
    /// `timestamping`
    Timestamping,
    /// `ocsp signing`
    OcspSigning,
    /// `microsoft sgc`
    MicrosoftSgc,
    /// `netscape sgc`
    NetscapeSgc,
}

impl Usage {
    /// Every usage, in the order the Kubernetes API lists them.
    pub const ALL: [Usage; 23] = [
        Usage::Signing,
        Usage::DigitalSignature,
        Usage::ContentCommitment,
        Usage::KeyEncipherment,
        Usage::KeyAgreement,
        Usage::DataEncipherment,
        Usage::CertSign,
        Usage::CrlSign,
        Usage::EncipherOnly,
        Usage::DecipherOnly,
        Usage::Any,
        Usage::ServerAuth,
        Usage::ClientAuth,
        Usage::CodeSigning,
        Usage::EmailProtection,
        Usage::SMime,
        Usage::IpsecEndSystem,
        Usage::IpsecTunnel,
        Usage::IpsecUser,
        Usage::Timestamping,
        Usage::OcspSigning,
        Usage::MicrosoftSgc,
        Usage::NetscapeSgc,
    ];

    /// The Kubernetes name (`spec.usages` value).
    pub fn k8s_name(self) -> &'static str {
        match self {
            Usage::Signing => "signing",
            Usage::DigitalSignature => "digital signature",
            Usage::ContentCommitment => "content commitment",
            Usage::KeyEncipherment => "key encipherment",
            Usage::KeyAgreement => "key agreement",
            Usage::DataEncipherment => "data encipherment",
            Usage::CertSign => "cert sign",
            Usage::CrlSign => "crl sign",
            Usage::EncipherOnly => "encipher only",
            Usage::DecipherOnly => "decipher only",
            Usage::Any => "any",
            Usage::ServerAuth => "server auth",
            Usage::ClientAuth => "client auth",
            Usage::CodeSigning => "code signing",
            Usage::EmailProtection => "email protection",
            Usage::SMime => "s/mime",
            Usage::IpsecEndSystem => "ipsec end system",
            Usage::IpsecTunnel => "ipsec tunnel",
            Usage::IpsecUser => "ipsec user",
            Usage::Timestamping => "timestamping",
            Usage::OcspSigning => "ocsp signing",
            Usage::MicrosoftSgc => "microsoft sgc",
            Usage::NetscapeSgc => "netscape sgc",
        }
    }

    /// Parses a Kubernetes usage name.
    pub fn from_k8s_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.k8s_name() == name)
    }
}

/// The extended key usage of `u`; `None` for a key usage (digital signature, …).
pub(crate) fn ext_key_usage(u: Usage) -> Option<ExtendedKeyUsagePurpose> {
    use ExtendedKeyUsagePurpose as E;
    Some(match u {
        Usage::Any => E::Any,
        Usage::ServerAuth => E::ServerAuth,
        Usage::ClientAuth => E::ClientAuth,
        Usage::CodeSigning => E::CodeSigning,
        Usage::EmailProtection | Usage::SMime => E::EmailProtection,
        Usage::Timestamping => E::TimeStamping,
        Usage::OcspSigning => E::OcspSigning,
        Usage::IpsecEndSystem => E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 5]),
        Usage::IpsecTunnel => E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 6]),
        Usage::IpsecUser => E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 7]),
        Usage::MicrosoftSgc => E::Other(vec![1, 3, 6, 1, 4, 1, 311, 10, 3, 3]),
        Usage::NetscapeSgc => E::Other(vec![2, 16, 840, 1, 113730, 4, 1]),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_round_trip() {
        for u in Usage::ALL {
            assert_eq!(Usage::from_k8s_name(u.k8s_name()), Some(u));
        }
        assert_eq!(Usage::from_k8s_name("Client Auth"), None);
    }
}
