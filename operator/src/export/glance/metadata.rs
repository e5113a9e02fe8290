//! What a Glance image says about the list's image: the HEPiX fields
//! mapped onto Glance's well-known properties (pure).

use std::collections::BTreeMap;

use serde_json::Value;

use super::plan::{PROP_IDENTIFIER, PROP_LIST, PROP_SHA512};
use crate::api::export::GlanceExport;
use crate::imagelist::Image;

/// Fields vmlisub owns on the image: `spec.properties` may not set them.
const RESERVED: &[&str] = &[
    PROP_LIST,
    PROP_IDENTIFIER,
    PROP_SHA512,
    "id",
    "status",
    "os_hash_algo",
    "os_hash_value",
    "checksum",
    "size",
    "virtual_size",
    "disk_format",
    "container_format",
    "owner",
    "locations",
    "direct_url",
    "os_hidden",
];

/// `(disk_format, container_format)` for `hv:format` (or, when the list
/// gives none, what the file's first bytes say: qcow2 or raw).
pub fn formats(format: Option<&str>, magic: &[u8]) -> (&'static str, &'static str) {
    let sniffed = if magic.starts_with(b"QFI\xfb") {
        "qcow2"
    } else {
        "raw"
    };
    let format = format
        .map(str::trim)
        .unwrap_or_default()
        .to_ascii_lowercase();
    match format.as_str() {
        "ova" => ("vmdk", "ova"),
        "qcow2" | "qcow" => ("qcow2", "bare"),
        "raw" | "img" => ("raw", "bare"),
        "vmdk" => ("vmdk", "bare"),
        "vdi" => ("vdi", "bare"),
        "vhd" => ("vhd", "bare"),
        "vhdx" => ("vhdx", "bare"),
        "iso" => ("iso", "bare"),
        "ploop" => ("ploop", "bare"),
        _ => (sniffed, "bare"),
    }
}

/// Glance's `os_distro` for `sl:osname` (or `sl:os` when it names more
/// than "Linux"): the lower-case names of the OpenStack documentation.
pub fn os_distro(image: &Image) -> Option<String> {
    let name = image
        .osname
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| Some(image.os.as_str()).filter(|os| !is_generic_os(os)))?;
    let squashed: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let distro = match squashed.as_str() {
        "" => return None,
        "redhatenterpriselinux" | "redhat" | "rhel" => "rhel",
        "scientificlinux" | "sl" | "scientific" => "scientific",
        "almalinux" | "alma" => "almalinux",
        "rockylinux" | "rocky" => "rocky",
        "opensuse" | "opensuseleap" => "opensuse",
        "suselinuxenterpriseserver" | "sles" | "suse" => "sles",
        "ubuntu" => "ubuntu",
        "debian" => "debian",
        "fedora" => "fedora",
        "centos" | "centosstream" => "centos",
        "windows" | "microsoftwindows" => "windows",
        "freebsd" => "freebsd",
        "cirros" => "cirros",
        other => return Some(other.to_string()),
    };
    Some(distro.to_string())
}

fn is_generic_os(os: &str) -> bool {
    let os = os.trim();
    os.is_empty() || os.eq_ignore_ascii_case("linux") || os.eq_ignore_ascii_case("unix")
}

/// Glance's `architecture` for `sl:arch`.
pub fn architecture(arch: &str) -> Option<String> {
    let arch = arch.trim().to_ascii_lowercase();
    let mapped = match arch.as_str() {
        "" => return None,
        "x86_64" | "amd64" | "x64" | "x86-64" => "x86_64",
        "i386" | "i486" | "i586" | "i686" | "x86" => "i686",
        "aarch64" | "arm64" => "aarch64",
        "ppc64le" | "ppc64el" => "ppc64le",
        other => return Some(other.to_string()),
    };
    Some(mapped.to_string())
}

/// The fields of the image that a rerun keeps up to date (name,
/// visibility, the mapped properties and `spec.properties`). Values are
/// strings except `min_ram`/`min_disk` (integers, as Glance has them).
pub fn mutable_fields(
    image: &Image,
    export: &GlanceExport,
    fallback_name: &str,
) -> BTreeMap<String, Value> {
    let mut fields = BTreeMap::new();
    let text = |v: &str| Value::String(v.to_string());
    let name = export
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| Some(image.title.clone()).filter(|t| !t.trim().is_empty()))
        .unwrap_or_else(|| fallback_name.to_string());
    fields.insert("name".into(), Value::String(name));
    fields.insert("visibility".into(), text(export.visibility.as_str()));
    if let Some(distro) = os_distro(image) {
        fields.insert(
            "os_type".into(),
            text(if distro == "windows" {
                "windows"
            } else {
                "linux"
            }),
        );
        fields.insert("os_distro".into(), Value::String(distro));
    }
    if !image.osversion.trim().is_empty() {
        fields.insert("os_version".into(), text(image.osversion.trim()));
    }
    if let Some(arch) = architecture(&image.arch) {
        fields.insert("architecture".into(), Value::String(arch));
    }
    // Informational only: Nova's ImagePropertiesFilter would exclude every
    // host whose hypervisor a list names differently (set
    // `hypervisor_type` in spec.properties where wanted).
    if !image.hypervisor.trim().is_empty() {
        fields.insert("vmli_hypervisor".into(), text(image.hypervisor.trim()));
    }
    if let Some(ram) = image.ram_minimum.filter(|r| *r > 0) {
        fields.insert("min_ram".into(), Value::from(ram));
    }
    if let Some(cores) = image.core_minimum.filter(|c| *c > 0) {
        fields.insert("vmli_core_minimum".into(), Value::String(cores.to_string()));
    }
    if !image.version.trim().is_empty() {
        fields.insert("vmli_version".into(), text(image.version.trim()));
    }
    if let Some(mpuri) = image.mpuri.as_deref().filter(|m| !m.is_empty()) {
        fields.insert("vmli_mpuri".into(), text(mpuri));
    }
    for (name, value) in &export.properties {
        if RESERVED.contains(&name.as_str()) {
            continue;
        }
        let value = match name.as_str() {
            "min_ram" | "min_disk" => value
                .trim()
                .parse::<u64>()
                .map_or_else(|_| text(value), Value::from),
            _ => text(value),
        };
        fields.insert(name.clone(), value);
    }
    fields
}

/// The `spec.properties` names that vmlisub owns and ignores.
pub fn reserved_properties(export: &GlanceExport) -> Vec<&str> {
    export
        .properties
        .keys()
        .map(String::as_str)
        .filter(|name| RESERVED.contains(name))
        .collect()
}

/// The body of `POST /v2/images` for a new image: the identity
/// properties, the formats and the mutable fields.
pub fn create_body(
    list: &str,
    identifier: &str,
    sha512: &str,
    formats: (&str, &str),
    mutable: &BTreeMap<String, Value>,
) -> Value {
    let mut body = serde_json::Map::new();
    for (name, value) in mutable {
        body.insert(name.clone(), value.clone());
    }
    body.insert(PROP_LIST.into(), Value::String(list.to_string()));
    body.insert(
        PROP_IDENTIFIER.into(),
        Value::String(identifier.to_string()),
    );
    body.insert(PROP_SHA512.into(), Value::String(sha512.to_string()));
    body.insert("disk_format".into(), Value::String(formats.0.to_string()));
    body.insert(
        "container_format".into(),
        Value::String(formats.1.to_string()),
    );
    Value::Object(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::api::export::GlanceVisibility;
    use crate::api::list_subscription::LocalObjectReference;

    fn spec() -> GlanceExport {
        serde_json::from_value(serde_json::json!({
            "endpoint": "https://glance.example.org:9292",
            "credentialsSecretRef": {"name": "glance"}
        }))
        .unwrap()
    }

    fn image() -> Image {
        use crate::imagelist::{ImageId, Sha512Hex};
        Image {
            identifier: ImageId::new("img-1").unwrap(),
            title: "CernVM 4".into(),
            description: String::new(),
            uri: "https://example.org/img".into(),
            size: 10,
            sha512: Sha512Hex::new(&"a".repeat(128)).unwrap(),
            arch: "amd64".into(),
            os: "Linux".into(),
            osversion: "7.9".into(),
            comments: String::new(),
            hypervisor: "QEMU,KVM".into(),
            version: "4.1".into(),
            format: Some("QCOW2".into()),
            ram_minimum: Some(2048),
            core_minimum: Some(2),
            osname: Some("Scientific Linux".into()),
            expires: None,
            mpuri: None,
            base_mpuri: None,
            appid: None,
            group: None,
            ram_recommended: None,
            core_recommended: None,
            user_fullname: None,
            user_guid: None,
            user_uri: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn maps_the_hepix_fields() {
        let mut export = GlanceExport {
            visibility: GlanceVisibility::Community,
            credentials_secret_ref: LocalObjectReference { name: "g".into() },
            ..spec()
        };
        export
            .properties
            .insert("hw_firmware_type".into(), "uefi".into());
        export.properties.insert("min_disk".into(), "20".into());
        export
            .properties
            .insert(PROP_SHA512.into(), "forged".into());
        let fields = mutable_fields(&image(), &export, "fallback");
        let get = |k: &str| fields.get(k).cloned().unwrap_or(Value::Null);
        assert_eq!(get("name"), "CernVM 4");
        assert_eq!(get("visibility"), "community");
        assert_eq!(get("os_distro"), "scientific");
        assert_eq!(get("os_type"), "linux");
        assert_eq!(get("os_version"), "7.9");
        assert_eq!(get("architecture"), "x86_64");
        assert_eq!(get("vmli_hypervisor"), "QEMU,KVM");
        assert!(!fields.contains_key("hypervisor_type"));
        assert_eq!(get("min_ram"), 2048);
        assert_eq!(get("min_disk"), 20);
        assert_eq!(get("hw_firmware_type"), "uefi");
        assert_eq!(get("vmli_version"), "4.1");
        assert!(!fields.contains_key(PROP_SHA512));
        assert_eq!(reserved_properties(&export), vec![PROP_SHA512]);
    }

    #[test]
    fn formats_follow_the_list_then_the_file() {
        assert_eq!(formats(Some("OVA"), b""), ("vmdk", "ova"));
        assert_eq!(formats(Some("qcow2"), b""), ("qcow2", "bare"));
        assert_eq!(formats(None, b"QFI\xfb\0\0\0\x03"), ("qcow2", "bare"));
        assert_eq!(formats(Some(""), b"\0\0\0\0"), ("raw", "bare"));
    }

    #[test]
    fn generic_os_names_map_to_nothing() {
        let mut image = image();
        image.osname = None;
        assert_eq!(os_distro(&image), None);
        image.os = "Ubuntu".into();
        assert_eq!(os_distro(&image).as_deref(), Some("ubuntu"));
        assert_eq!(architecture("ARM64").as_deref(), Some("aarch64"));
        assert_eq!(architecture(""), None);
    }

    #[test]
    fn create_body_carries_the_identity() {
        let fields = mutable_fields(&image(), &spec(), "x");
        let body = create_body("default/l", "img-1", "ab", ("raw", "bare"), &fields);
        assert_eq!(body[PROP_LIST], "default/l");
        assert_eq!(body[PROP_IDENTIFIER], "img-1");
        assert_eq!(body[PROP_SHA512], "ab");
        assert_eq!(body["disk_format"], "raw");
        assert_eq!(body["visibility"], "private");
    }
}
