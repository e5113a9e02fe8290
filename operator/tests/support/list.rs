//! HEPiX image-list documents (the signed JSON content).

use serde_json::{Map, Value, json};

use super::pki::Cert;
use super::time;

/// A text that appears exactly once in every generated list, in
/// `dc:description`; [`TAMPERED_MARKER`] has the same length and keeps the
/// JSON valid, so tampering changes the digest and nothing else.
pub const MARKER: &str = "Images for the vmlisub test suite";
pub const TAMPERED_MARKER: &str = "Images for the vmlisub evil suite";

/// A well-formed image list, ready to be edited.
#[derive(Clone, Debug)]
pub struct ListDoc {
    pub identifier: String,
    pub created: String,
    pub expires: String,
    pub dn: String,
    pub ca: String,
    pub version: String,
    /// Serialise with the `hv:imagelist` wrapper (the current format).
    pub wrapped: bool,
    pub images: Vec<Value>,
    /// Extra top-level list keys (kept verbatim).
    pub extra: Map<String, Value>,
}

impl ListDoc {
    /// A list endorsed by `signer`, current at [`time::AT`], with two images.
    pub fn for_signer(signer: &Cert) -> Self {
        ListDoc {
            identifier: "6b5cf4f4-8a53-4c3e-9d0e-3f7b6d0c1a11".to_owned(),
            created: time::LIST_FRESH.0.to_owned(),
            expires: time::LIST_FRESH.1.to_owned(),
            dn: signer.subject.clone(),
            ca: signer.issuer.clone(),
            version: "3.3.0-1".to_owned(),
            wrapped: true,
            images: vec![image(1), image(2)],
            extra: Map::new(),
        }
    }

    pub fn window(mut self, (created, expires): (&str, &str)) -> Self {
        created.clone_into(&mut self.created);
        expires.clone_into(&mut self.expires);
        self
    }

    pub fn dn(mut self, dn: &str) -> Self {
        dn.clone_into(&mut self.dn);
        self
    }

    pub fn ca(mut self, ca: &str) -> Self {
        ca.clone_into(&mut self.ca);
        self
    }

    /// `n` images instead of two (a large list: BER streaming splits its
    /// content into many chunks).
    pub fn images(mut self, n: u32) -> Self {
        self.images = (1..=n).map(image).collect();
        self
    }

    /// An extra list-level key (unknown keys are preserved).
    pub fn extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    pub fn legacy(mut self) -> Self {
        self.wrapped = false;
        self
    }

    /// The list object (without the wrapper).
    pub fn body(&self) -> Value {
        let mut list = Map::new();
        list.insert("dc:identifier".into(), json!(self.identifier));
        list.insert("dc:title".into(), json!("vmlisub test list"));
        list.insert("dc:description".into(), json!(MARKER));
        list.insert("dc:source".into(), json!("https://lists.example.org/"));
        list.insert("dc:date:created".into(), json!(self.created));
        list.insert("dc:date:expires".into(), json!(self.expires));
        list.insert("hv:version".into(), json!(self.version));
        list.insert(
            "hv:uri".into(),
            json!("https://lists.example.org/test/image.list"),
        );
        list.insert(
            "hv:endorser".into(),
            json!({"hv:x509": {
                "hv:dn": self.dn,
                "hv:ca": self.ca,
                "hv:email": "alice@example.org",
                "dc:creator": "Alice Example",
            }}),
        );
        list.insert("hv:images".into(), Value::Array(self.images.clone()));
        for (k, v) in &self.extra {
            list.insert(k.clone(), v.clone());
        }
        Value::Object(list)
    }

    /// The document as a JSON value.
    pub fn value(&self) -> Value {
        if self.wrapped {
            json!({ "hv:imagelist": self.body() })
        } else {
            self.body()
        }
    }

    /// Pretty-printed JSON with LF line endings and a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(&self.value())
            .unwrap_or_else(|e| panic!("serialise list: {e}"));
        text.push('\n');
        text.into_bytes()
    }
}

/// An image entry with every required key.
pub fn image(n: u32) -> Value {
    json!({"hv:image": {
        "dc:identifier": format!("0f1e2d3c-4b5a-4968-8776-{n:012x}"),
        "dc:title": format!("Test image {n}"),
        "dc:description": "A tiny test image",
        "hv:uri": format!("https://images.example.org/test-{n}.img"),
        "hv:size": 1024 * u64::from(n),
        "sl:checksum:sha512": format!("{:0128x}", n),
        "sl:arch": "x86_64",
        "sl:os": "Linux",
        "sl:osversion": "AlmaLinux 9",
        "sl:comments": "generated",
        "hv:hypervisor": "QEMU,KVM",
        "hv:version": "1",
        "hv:format": "QCOW2",
    }})
}
