//! CAP 1.2 §3.3.2.1: an `<alert>` may carry an enveloped XML signature (W3C XML-DSig) over the
//! whole message. When it does, it is verified (bergshamra): against the desk's trusted
//! certificates when the registry has some, else against the certificate the document carries,
//! which proves the document was not changed since it was signed but not who signed it.

use bergshamra::{DsigContext, KeysManager, VerifyResult, keys::loader};

const DSIG_NAMESPACE: &str = "http://www.w3.org/2000/09/xmldsig#";

/// What the document's XML signature says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No `<Signature>` in the XML-DSig namespace under `<alert>`.
    Unsigned,
    /// It verifies.
    Verified,
    /// It does not, and why.
    Broken(String),
}

/// Whether `<alert>` has a `<Signature>` child in the XML-DSig namespace.
fn signed(document: &str) -> bool {
    let options = roxmltree::ParsingOptions { allow_dtd: false, ..roxmltree::ParsingOptions::default() };
    roxmltree::Document::parse_with_options(document, options).is_ok_and(|parsed| {
        parsed
            .root_element()
            .children()
            .any(|child| child.tag_name().name() == "Signature" && child.tag_name().namespace() == Some(DSIG_NAMESPACE))
    })
}

/// Verifies the document's signature, if it has one, against `trusted` certificates (DER); with
/// none, against the certificate in its `<KeyInfo>`.
pub(crate) fn check(document: &str, trusted: &[Vec<u8>]) -> Verdict {
    if !signed(document) {
        return Verdict::Unsigned;
    }
    let mut keys = KeysManager::new();
    for (i, certificate) in trusted.iter().enumerate() {
        match loader::load_x509_cert_der(certificate) {
            Ok(key) => keys.add_key(key),
            Err(error) => return Verdict::Broken(format!("the desk's trusted certificate {i} does not load: {error}")),
        }
    }
    let context = if trusted.is_empty() {
        // No chain to check the certificate against: only that the document is as it was signed.
        DsigContext::new_permissive(keys).with_enabled_key_data_x509(true).with_insecure(true)
    } else {
        // Only the registered certificates count; one in the document is a hint at most.
        DsigContext::new(keys)
    };
    match bergshamra::verify(&context, document) {
        Ok(VerifyResult::Valid { .. }) => Verdict::Verified,
        Ok(VerifyResult::Invalid { reason }) => Verdict::Broken(reason),
        Err(error) => Verdict::Broken(error.to_string()),
    }
}

/// Signs a CAP document as an agency's system does: an enveloped signature over the whole
/// `<alert>` (exclusive canonicalisation, ECDSA P-256 with SHA-256), the certificate in
/// `<KeyInfo>`. For desks' tools and the tests; Bashu itself only verifies.
pub fn sign(document: &str, private_key_pem: &str, certificate_pem: &str) -> Result<String, bergshamra::Error> {
    use base64::Engine as _;
    use bergshamra::core::algorithm;
    let certificate = loader::load_x509_cert_pem(certificate_pem.as_bytes())?;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(certificate.x509_chain.first().cloned().unwrap_or_default());
    let template = format!(
        r#"<ds:Signature xmlns:ds="{DSIG_NAMESPACE}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{c14n}"/><ds:SignatureMethod Algorithm="{method}"/><ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="{enveloped}"/><ds:Transform Algorithm="{c14n}"/></ds:Transforms><ds:DigestMethod Algorithm="{sha256}"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{encoded}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature></alert>"#,
        c14n = algorithm::EXC_C14N,
        method = algorithm::ECDSA_SHA256,
        enveloped = algorithm::ENVELOPED_SIGNATURE,
        sha256 = algorithm::SHA256,
    );
    let mut keys = KeysManager::new();
    keys.add_key(loader::load_pem_auto(private_key_pem.as_bytes(), None)?);
    bergshamra::sign(&DsigContext::new_permissive(keys), &document.replacen("</alert>", &template, 1))
}

/// A certificate in PEM as DER, as the registry keeps it.
pub fn certificate_der(certificate_pem: &str) -> Result<Vec<u8>, bergshamra::Error> {
    Ok(loader::load_x509_cert_pem(certificate_pem.as_bytes())?.x509_chain.first().cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::{Verdict, certificate_der, check};

    const A1: &str = include_str!("../fixtures/a1-advisory.xml");
    /// The tests' desk and someone else: (private key PEM, certificate PEM).
    const DESK: (&str, &str) =
        (include_str!("../fixtures/xmldsig/desk-key.pem"), include_str!("../fixtures/xmldsig/desk-cert.pem"));
    const OTHER: (&str, &str) =
        (include_str!("../fixtures/xmldsig/other-key.pem"), include_str!("../fixtures/xmldsig/other-cert.pem"));

    fn sign(document: &str, (key, certificate): (&str, &str)) -> String {
        super::sign(document, key, certificate).expect("signed")
    }

    fn der(certificate: &str) -> Vec<u8> {
        certificate_der(certificate).expect("a certificate")
    }

    fn broken(verdict: Verdict) -> String {
        match verdict {
            Verdict::Broken(reason) => reason,
            other => panic!("expected a broken signature, got {other:?}"),
        }
    }

    #[test]
    fn a_signed_document_verifies_against_the_desks_certificate_and_its_own() {
        let signed = sign(A1, DESK);
        assert_eq!(check(&signed, &[der(DESK.1)]), Verdict::Verified);
        assert_eq!(check(&signed, &[]), Verdict::Verified, "integrity, with the certificate it carries");
        assert_eq!(check(A1, &[der(DESK.1)]), Verdict::Unsigned);
    }

    #[test]
    fn tampering_and_strangers_are_caught() {
        let signed = sign(A1, DESK);
        // The content changed after signing: its digest no longer matches.
        let tampered = signed.replace("全省公共安全预警提升至橙色", "全省公共安全预警解除");
        assert_ne!(tampered, signed);
        broken(check(&tampered, &[der(DESK.1)]));
        broken(check(&tampered, &[]));
        // The signature value itself changed.
        let start = signed.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
        let mut forged = signed.clone();
        let flipped = if &signed[start..start + 1] == "A" { "B" } else { "A" };
        forged.replace_range(start..start + 1, flipped);
        broken(check(&forged, &[der(DESK.1)]));
        // Signed by someone else: valid in itself, but not by a certificate the desk trusts.
        let stranger = sign(A1, OTHER);
        assert_eq!(check(&stranger, &[]), Verdict::Verified);
        broken(check(&stranger, &[der(DESK.1)]));
    }
}
