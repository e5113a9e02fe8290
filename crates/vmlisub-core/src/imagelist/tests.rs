//! Parser tests against real lists and hand-made edge cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::reason::Reason;
use serde_json::{Value, json};

macro_rules! real_list {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/testdata/real-lists/",
            $name
        ))
        .as_slice()
    };
}

const SHA_A: &str = "8b4c269a60da1061b434b696c4a89293bea847b66bd8ba486a914d4209df651193ee8d454f8231840b7500fab6740620c7111d9a17d08b743133dc393ba2c0d4";

/// The first MIME part of a multipart/signed message: the text between the
/// first boundary line and the next one (without the line break before it).
fn smime_content(msg: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(msg).unwrap();
    let start = text.find("boundary=\"").unwrap() + "boundary=\"".len();
    let boundary = &text[start..start + text[start..].find('"').unwrap()];
    let delimiter = format!("--{boundary}");
    let mut lines = text.split_inclusive('\n');
    let mut offset = 0;
    // Skip to just after the first delimiter line.
    for line in lines.by_ref() {
        offset += line.len();
        if line.trim_end() == delimiter {
            break;
        }
    }
    let body_start = offset;
    for line in lines {
        if line.trim_end() == delimiter {
            break;
        }
        offset += line.len();
    }
    let mut body = &text[body_start..offset];
    body = body
        .strip_suffix("\r\n")
        .or_else(|| body.strip_suffix('\n'))
        .unwrap_or(body);
    body.as_bytes().to_vec()
}

fn image_json() -> Value {
    json!({
        "dc:identifier": "488dcdc4-9ab1-4fc8-a7ba-b7a5428ecb3d",
        "dc:title": "README example VM",
        "dc:description": "This is an README example VM",
        "hv:uri": "http://example.org/example-image.img",
        "hv:size": 2147483648u64,
        "sl:checksum:sha512": SHA_A,
        "sl:arch": "x86_64",
        "sl:os": "Linux",
        "sl:osversion": "SL 5.5",
        "sl:comments": "",
        "hv:hypervisor": "kvm",
        "hv:version": "1"
    })
}

fn image_with_id(id: &str) -> Value {
    let mut v = image_json();
    v["dc:identifier"] = json!(id);
    json!({ "hv:image": v })
}

fn body_json(images: Vec<Value>) -> Value {
    json!({
        "dc:identifier": "4e186b44-2c64-40ea-97d5-e9e5c0bce059",
        "dc:title": "README example",
        "dc:description": "a README example of an image list",
        "dc:source": "example.org",
        "dc:date:created": "2011-03-10T17:09:12Z",
        "dc:date:expires": "2011-04-07T17:09:12Z",
        "hv:version": "1",
        "hv:uri": "http://example.org/example-image-list.image_list",
        "hv:endorser": {"hv:x509": {
            "hv:dn": "/C=DE/O=GermanGrid/OU=DESY/CN=Owen Synge",
            "hv:ca": "/C=DE/O=GermanGrid/CN=GridKa-CA",
            "hv:email": "owen.synge@desy.de",
            "dc:creator": "Owen Synge"
        }},
        "hv:images": images
    })
}

fn doc(body: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "hv:imagelist": body })).unwrap()
}

fn parse_body(body: Value) -> Result<Parsed, ListError> {
    parse(&doc(body))
}

/// Parses a list holding one image built from `image_json()` modified by `f`.
fn parse_one(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Parsed {
    let mut img = image_json();
    f(img.as_object_mut().unwrap());
    parse_body(body_json(vec![json!({ "hv:image": img })])).unwrap()
}

fn rejected_reason(p: &Parsed) -> &str {
    assert!(p.list.images.is_empty(), "image unexpectedly accepted");
    assert_eq!(p.rejected.len(), 1);
    &p.rejected[0].reason
}

// ---------------------------------------------------------------- real lists

#[test]
fn hepixvmitrust_template() {
    let p = parse(real_list!("hepixvmitrust-imagelist.json")).unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert!(p.rejected.is_empty());
    let l = &p.list;
    assert_eq!(l.identifier, "4e186b44-2c64-40ea-97d5-e9e5c0bce059");
    assert_eq!(l.title, "README example");
    assert_eq!(l.source, "example.org");
    assert_eq!(format_timestamp(l.created), "2011-03-10T17:09:12Z");
    assert_eq!(format_timestamp(l.expires), "2011-04-07T17:09:12Z");
    assert_eq!(l.version, "1");
    assert_eq!(l.uri, "http://example.org/example-image-list.image_list");
    assert_eq!(
        l.endorser.x509.dn,
        "/C=DE/O=GermanGrid/OU=DESY/CN=Owen Synge"
    );
    assert_eq!(l.endorser.x509.ca, "/C=DE/O=GermanGrid/CN=GridKa-CA");
    assert_eq!(l.endorser.x509.email.as_deref(), Some("owen.synge@desy.de"));
    assert_eq!(l.endorser.x509.creator.as_deref(), Some("Owen Synge"));
    assert!(l.extra.is_empty() && l.endorser.extra.is_empty());
    assert_eq!(l.vo, None);
    let [img] = l.images() else {
        panic!("expected one image")
    };
    assert_eq!(img.identifier, "488dcdc4-9ab1-4fc8-a7ba-b7a5428ecb3d");
    assert_eq!(img.size, 2_147_483_648);
    assert_eq!(img.sha512.as_str(), SHA_A);
    assert!(img.sha512_matches(&SHA_A.to_uppercase()));
    assert_eq!(img.hypervisor, "kvm");
    assert_eq!(img.osversion, "SL 5.5");
    assert_eq!(img.format, None);
    assert_eq!(img.expires, None);
    assert!(img.extra.is_empty());
}

#[test]
fn cloudkeeper_unsigned_appdb_fields() {
    let p = parse(real_list!("cloudkeeper-imagelist01.unsigned")).unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert!(p.rejected.is_empty());
    let l = &p.list;
    assert_eq!(l.vo.as_deref(), Some("some1.vo.net"));
    assert_eq!(l.version, "20150618211400");
    assert_eq!(l.images().len(), 2);
    let a = l.image("c0482bc2-bf41-5d49-aaaa-a750174a186b").unwrap();
    assert_eq!(a.size, 121_243_136);
    assert_eq!(a.ram_minimum, Some(512));
    assert_eq!(a.core_minimum, Some(1));
    assert_eq!(a.ram_recommended, Some(1024));
    assert_eq!(a.core_recommended, Some(4));
    assert_eq!(a.format.as_deref(), Some("OVA"));
    assert_eq!(a.osname.as_deref(), Some("Scientific Linux"));
    assert_eq!(a.group.as_deref(), Some("General group"));
    assert_eq!(a.user_fullname.as_deref(), Some("Bruce Wayne"));
    assert_eq!(
        a.user_uri.as_deref(),
        Some("https://appdb.somewhere.net/store/person/bruce.wayne")
    );
    assert!(a.mpuri.as_deref().unwrap().ends_with(":484/"));
    assert_eq!(
        a.expires.map(format_timestamp).as_deref(),
        Some("2499-12-31T22:00:00Z")
    );
    assert!(a.extra.is_empty());
    let b = &l.images()[1];
    assert_eq!(b.ram_minimum, None);
    assert_eq!(b.version, "20141029");
    assert_eq!(b.description, "");
    let sha = b.sha512.as_str().to_owned();
    assert_eq!(l.images_by_sha512(&sha).count(), 1);
    assert!(l.image("nope").is_none());
}

#[test]
fn every_signed_real_list_parses() {
    let cases: &[(&[u8], bool)] = &[
        (real_list!("cloudkeeper-imagelist01.signed"), false),
        (real_list!("cloudkeeper-imagelist02.signed"), false),
        (real_list!("cloudkeeper-imagelist03.signed"), false),
        (real_list!("cloudkeeper-imagelist04.signed"), false),
        (real_list!("cloudkeeper-imagelist_invalid.signed"), false),
        (
            real_list!("hepixvmitrust-README-gridka-2011-06-hvimagelist.smime"),
            false,
        ),
        (
            real_list!("hepixvmitrust-README-gridka-2011-03-legacyformat.smime"),
            true,
        ),
        (
            real_list!("hepix-book-gridka-2011-03-legacyformat.smime"),
            true,
        ),
    ];
    for (i, (msg, legacy)) in cases.iter().enumerate() {
        let content = smime_content(msg);
        let p = parse(&content).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert!(p.rejected.is_empty(), "case {i}: {:?}", p.rejected);
        assert!(!p.list.images.is_empty());
        assert_eq!(
            p.warnings.iter().any(|w| w.contains("legacy")),
            *legacy,
            "case {i}: {:?}",
            p.warnings
        );
    }
}

#[test]
fn legacy_and_wrapped_forms_give_the_same_list() {
    let legacy = parse(&smime_content(real_list!(
        "hepixvmitrust-README-gridka-2011-03-legacyformat.smime"
    )))
    .unwrap();
    let wrapped = parse(real_list!("hepixvmitrust-imagelist.json")).unwrap();
    assert_eq!(legacy.list, wrapped.list);
    assert_eq!(legacy.warnings.len(), 1);
}

#[test]
fn crlf_content_parses_like_lf() {
    let crlf = smime_content(real_list!("cloudkeeper-imagelist01.signed"));
    assert!(crlf.windows(2).any(|w| w == b"\r\n"));
    let a = parse(&crlf).unwrap();
    let b = parse(real_list!("cloudkeeper-imagelist01.unsigned")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn prototype_format_is_not_a_list() {
    let content = smime_content(real_list!(
        "hepixvmitrust-README-gridka-2011-02-legacyformat.smime"
    ));
    let e = parse(&content).unwrap_err();
    assert_eq!(
        e,
        ListError::MissingField {
            key: "dc:identifier"
        }
    );
    assert_eq!(e.reason(), "malformed-list");
}

#[test]
fn the_whole_smime_message_is_not_json() {
    let e = parse(real_list!("cloudkeeper-imagelist01.signed")).unwrap_err();
    assert!(matches!(e, ListError::Json { .. }), "{e}");
}

// ------------------------------------------------------------- serialization

#[test]
fn round_trip_through_document() {
    for bytes in [
        real_list!("cloudkeeper-imagelist01.unsigned").to_vec(),
        real_list!("hepixvmitrust-imagelist.json").to_vec(),
    ] {
        let p = parse(&bytes).unwrap();
        let out = serde_json::to_vec(&p.list.to_document()).unwrap();
        let again = parse(&out).unwrap();
        assert_eq!(again.list, p.list);
        assert!(again.warnings.is_empty());
    }
}

#[test]
fn serializes_original_keys_with_normalised_values() {
    let p = parse(real_list!("cloudkeeper-imagelist01.unsigned")).unwrap();
    let v = serde_json::to_value(&p.list.images()[0]).unwrap();
    let o = v.as_object().unwrap();
    assert_eq!(o["hv:size"], json!(121_243_136u64));
    assert_eq!(o["hv:ram_minimum"], json!(512));
    assert_eq!(o["ad:core_recommended"], json!(4));
    assert_eq!(o["dc:date:expires"], json!("2499-12-31T22:00:00Z"));
    assert_eq!(
        o["ad:user:guid"],
        json!("9d9dd6cf-b61a-aaaa-b1df-b5731adf717c")
    );
    // Every key of the source image comes back, no more.
    let src: Value =
        serde_json::from_slice(real_list!("cloudkeeper-imagelist01.unsigned")).unwrap();
    let src_img = src["hv:imagelist"]["hv:images"][0]["hv:image"]
        .as_object()
        .unwrap();
    let mut a: Vec<_> = src_img.keys().collect();
    let mut b: Vec<_> = o.keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // The list body wraps images and keeps the list keys.
    let l = serde_json::to_value(&p.list).unwrap();
    assert!(l["hv:images"][0]["hv:image"].is_object());
    assert_eq!(l["ad:vo"], json!("some1.vo.net"));
    assert!(l.get("ad:swid").is_none());
    let d = serde_json::to_value(p.list.to_document()).unwrap();
    assert_eq!(d["hv:imagelist"], l);
}

#[test]
fn image_key_order_is_stable() {
    let p = parse_body(body_json(vec![image_with_id("a")])).unwrap();
    let s = serde_json::to_string(&p.list.images()[0]).unwrap();
    assert!(s.starts_with(r#"{"dc:identifier":"a","dc:title":"#), "{s}");
}

#[test]
fn unknown_keys_are_preserved_everywhere() {
    let mut body = body_json(vec![]);
    let mut img = image_json();
    img["x:custom"] = json!({"nested": [1, 2]});
    img["hv:format"] = json!("QCOW2");
    body["hv:images"] = json!([{ "hv:image": img }]);
    body["x:list"] = json!("list-level");
    body["hv:endorser"]["x:end"] = json!(1);
    body["hv:endorser"]["hv:x509"]["x:cert"] = json!(true);
    let p = parse_body(body).unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.list.extra["x:list"], json!("list-level"));
    assert_eq!(p.list.endorser.extra["x:end"], json!(1));
    assert_eq!(p.list.endorser.x509.extra["x:cert"], json!(true));
    let img = &p.list.images()[0];
    assert_eq!(img.extra["x:custom"], json!({"nested": [1, 2]}));
    assert_eq!(img.format.as_deref(), Some("QCOW2"));
    let out = serde_json::to_value(p.list.to_document()).unwrap();
    let b = &out["hv:imagelist"];
    assert_eq!(b["x:list"], json!("list-level"));
    assert_eq!(b["hv:endorser"]["x:end"], json!(1));
    assert_eq!(b["hv:endorser"]["hv:x509"]["x:cert"], json!(true));
    assert_eq!(
        b["hv:images"][0]["hv:image"]["x:custom"],
        json!({"nested": [1, 2]})
    );
    let again = parse(&serde_json::to_vec(&out).unwrap()).unwrap();
    assert_eq!(again.list, p.list);
}

#[test]
fn parsed_serializes_for_the_cli() {
    let mut bad = image_json();
    bad.as_object_mut().unwrap().remove("hv:uri");
    let p = parse_body(body_json(vec![
        image_with_id("a"),
        json!({ "hv:image": bad }),
    ]))
    .unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["rejected"][0]["reason"], json!("missing-field"));
    assert_eq!(v["rejected"][0]["index"], json!(1));
    assert_eq!(
        v["rejected"][0]["identifier"],
        json!("488dcdc4-9ab1-4fc8-a7ba-b7a5428ecb3d")
    );
    assert_eq!(v["warnings"], json!([]));
}

// --------------------------------------------------------- list-level errors

#[test]
fn not_json_or_not_an_object() {
    for input in [&b""[..], b"{", b"nul", b"{\"a\":1}x", b"\xff\xfe{}"] {
        assert!(
            matches!(parse(input), Err(ListError::Json { .. })),
            "{input:?}"
        );
    }
    for (input, found) in [
        (&b"[]"[..], "array"),
        (b"1", "number"),
        (b"\"s\"", "string"),
        (b"null", "null"),
        (b"true", "boolean"),
    ] {
        assert_eq!(
            parse(input).unwrap_err(),
            ListError::NotAnObject {
                key: "(document)",
                found
            }
        );
    }
    assert_eq!(
        parse(br#"{"hv:imagelist": []}"#).unwrap_err(),
        ListError::NotAnObject {
            key: "hv:imagelist",
            found: "array"
        }
    );
    // An empty object is a legacy-form list with nothing in it.
    assert_eq!(
        parse(b"{}").unwrap_err(),
        ListError::MissingField {
            key: "dc:identifier"
        }
    );
}

#[test]
fn byte_order_mark_is_tolerated_with_warning() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(real_list!("hepixvmitrust-imagelist.json"));
    let p = parse(&bytes).unwrap();
    assert!(p.warnings[0].contains("byte order mark"));
}

#[test]
fn keys_beside_the_wrapper_are_ignored_with_warning() {
    let mut v = json!({ "hv:imagelist": body_json(vec![]) });
    v["stray"] = json!(1);
    let p = parse(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].contains("\"stray\""));
    assert!(p.list.extra.is_empty());
}

#[test]
fn every_required_list_key_is_required() {
    for key in [
        "dc:identifier",
        "dc:title",
        "dc:description",
        "dc:source",
        "dc:date:created",
        "dc:date:expires",
        "hv:version",
        "hv:uri",
        "hv:endorser",
        "hv:images",
    ] {
        let mut body = body_json(vec![]);
        body.as_object_mut().unwrap().remove(key);
        let e = parse_body(body).unwrap_err();
        assert_eq!(e, ListError::MissingField { key }, "{key}");
        assert_eq!(e.reason(), "malformed-list");
        assert!(e.to_string().contains(key));
    }
}

#[test]
fn list_keys_must_have_the_right_type() {
    for (key, expected) in [
        ("dc:identifier", "a string"),
        ("dc:title", "a string"),
        ("dc:description", "a string"),
        ("dc:source", "a string"),
        ("dc:date:created", "a string"),
        ("dc:date:expires", "a string"),
        ("hv:version", "a string"),
        ("hv:uri", "a string"),
        ("hv:endorser", "an object"),
        ("hv:images", "an array"),
    ] {
        let mut body = body_json(vec![]);
        body[key] = json!(7);
        assert_eq!(
            parse_body(body).unwrap_err(),
            ListError::WrongType {
                key,
                expected,
                found: "number"
            },
            "{key}"
        );
    }
    let mut body = body_json(vec![]);
    body["hv:images"] = json!({"hv:image": {}});
    assert!(matches!(
        parse_body(body).unwrap_err(),
        ListError::WrongType {
            key: "hv:images",
            found: "object",
            ..
        }
    ));
}

#[test]
fn list_timestamps_are_strict() {
    for key in ["dc:date:created", "dc:date:expires"] {
        for bad in [
            "2011-03-10T17:09:12",
            "2011-02-30T00:00:00Z",
            "2011-03-10T17:09:12.000Z",
        ] {
            let mut body = body_json(vec![]);
            body[key] = json!(bad);
            let e = parse_body(body).unwrap_err();
            assert!(
                matches!(e, ListError::InvalidTimestamp { key: k, .. } if k == key),
                "{key} {bad}: {e}"
            );
        }
    }
}

#[test]
fn list_identifier_must_be_safe() {
    for bad in ["", "../x", "a b", ".x"] {
        let mut body = body_json(vec![]);
        body["dc:identifier"] = json!(bad);
        assert!(
            matches!(
                parse_body(body).unwrap_err(),
                ListError::InvalidIdentifier {
                    key: "dc:identifier",
                    ..
                }
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn empty_version_and_dns_are_rejected() {
    let mut body = body_json(vec![]);
    body["hv:version"] = json!("");
    assert_eq!(
        parse_body(body).unwrap_err(),
        ListError::EmptyField { key: "hv:version" }
    );
    for (k, path) in [
        ("hv:dn", "hv:endorser/hv:x509/hv:dn"),
        ("hv:ca", "hv:endorser/hv:x509/hv:ca"),
    ] {
        let mut body = body_json(vec![]);
        body["hv:endorser"]["hv:x509"][k] = json!("");
        assert_eq!(
            parse_body(body).unwrap_err(),
            ListError::EmptyField { key: path }
        );
    }
    // Other text may be empty.
    let mut body = body_json(vec![]);
    body["dc:title"] = json!("");
    body["hv:uri"] = json!("");
    assert!(parse_body(body).is_ok());
}

#[test]
fn endorser_block_errors() {
    let mut body = body_json(vec![]);
    body["hv:endorser"] = json!({});
    assert_eq!(
        parse_body(body).unwrap_err(),
        ListError::MissingField {
            key: "hv:endorser/hv:x509"
        }
    );
    let mut body = body_json(vec![]);
    body["hv:endorser"] = json!({"hv:x509": "x"});
    assert!(matches!(
        parse_body(body).unwrap_err(),
        ListError::WrongType {
            key: "hv:endorser/hv:x509",
            ..
        }
    ));
    for (k, path) in [
        ("hv:dn", "hv:endorser/hv:x509/hv:dn"),
        ("hv:ca", "hv:endorser/hv:x509/hv:ca"),
    ] {
        let mut body = body_json(vec![]);
        body["hv:endorser"]["hv:x509"]
            .as_object_mut()
            .unwrap()
            .remove(k);
        assert_eq!(
            parse_body(body).unwrap_err(),
            ListError::MissingField { key: path }
        );
        let mut body = body_json(vec![]);
        body["hv:endorser"]["hv:x509"][k] = json!(["x"]);
        assert!(matches!(
            parse_body(body).unwrap_err(),
            ListError::WrongType { key, .. } if key == path
        ));
    }
    // Contact details are optional but must be strings when present.
    let mut body = body_json(vec![]);
    let x = body["hv:endorser"]["hv:x509"].as_object_mut().unwrap();
    x.remove("hv:email");
    x.remove("dc:creator");
    let p = parse_body(body).unwrap();
    assert_eq!(p.list.endorser.x509.email, None);
    assert_eq!(p.list.endorser.x509.creator, None);
    let mut body = body_json(vec![]);
    body["hv:endorser"]["hv:x509"]["hv:email"] = json!(1);
    assert!(matches!(
        parse_body(body).unwrap_err(),
        ListError::WrongType {
            key: "hv:endorser/hv:x509/hv:email",
            ..
        }
    ));
}

#[test]
fn optional_list_keys_of_other_types_are_kept_with_warning() {
    let mut body = body_json(vec![]);
    body["ad:swid"] = json!(42);
    body["ad:vo"] = Value::Null;
    let p = parse_body(body).unwrap();
    assert_eq!(p.list.swid, None);
    assert_eq!(p.list.extra["ad:swid"], json!(42));
    assert_eq!(p.list.extra["ad:vo"], Value::Null);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains("ad:swid"));
    let out = serde_json::to_value(&p.list).unwrap();
    assert_eq!(out["ad:swid"], json!(42));
    let mut body = body_json(vec![]);
    body["ad:swid"] = json!("1017");
    assert_eq!(parse_body(body).unwrap().list.swid.as_deref(), Some("1017"));
}

#[test]
fn expiry_before_creation_warns() {
    let mut body = body_json(vec![]);
    body["dc:date:expires"] = body["dc:date:created"].clone();
    let p = parse_body(body).unwrap();
    assert!(p.warnings.iter().any(|w| w.contains("not after")));
}

#[test]
fn empty_image_array_is_a_valid_list() {
    let p = parse_body(body_json(vec![])).unwrap();
    assert!(p.list.images().is_empty());
    assert!(p.rejected.is_empty());
}

// -------------------------------------------------------------------- bounds

#[test]
fn too_many_images() {
    let limits = Limits {
        max_images: 3,
        ..Limits::default()
    };
    let ids = ["a", "b", "c"];
    let ok = doc(body_json(ids.iter().map(|i| image_with_id(i)).collect()));
    assert_eq!(
        parse_with_limits(&ok, &limits).unwrap().list.images.len(),
        3
    );
    let too_many = doc(body_json(
        ["a", "b", "c", "d"]
            .iter()
            .map(|i| image_with_id(i))
            .collect(),
    ));
    assert_eq!(
        parse_with_limits(&too_many, &limits).unwrap_err(),
        ListError::TooManyImages { count: 4, max: 3 }
    );
    assert_eq!(Limits::default().max_images, 10_000);
}

#[test]
fn default_image_limit_is_enforced() {
    let entries: Vec<Value> = (0..10_001).map(|_| json!(0)).collect();
    let e = parse_body(body_json(entries)).unwrap_err();
    assert_eq!(
        e,
        ListError::TooManyImages {
            count: 10_001,
            max: 10_000
        }
    );
}

#[test]
fn too_large() {
    let bytes = doc(body_json(vec![]));
    let limits = Limits {
        max_bytes: bytes.len(),
        ..Limits::default()
    };
    assert!(parse_with_limits(&bytes, &limits).is_ok());
    let limits = Limits {
        max_bytes: bytes.len() - 1,
        ..Limits::default()
    };
    assert_eq!(
        parse_with_limits(&bytes, &limits).unwrap_err(),
        ListError::TooLarge {
            size: bytes.len(),
            max: bytes.len() - 1
        }
    );
}

#[test]
fn over_long_strings_and_deep_nesting() {
    let mut body = body_json(vec![]);
    body["dc:description"] = json!("x".repeat(64 * 1024 + 1));
    let e = parse_body(body).unwrap_err();
    assert!(
        matches!(&e, ListError::Json { message } if message.contains("exceeds")),
        "{e}"
    );

    let mut body = body_json(vec![]);
    let mut deep = json!(1);
    for _ in 0..70 {
        deep = json!([deep]);
    }
    body["x:deep"] = deep;
    let e = parse_body(body).unwrap_err();
    assert!(
        matches!(&e, ListError::Json { message } if message.contains("nesting")),
        "{e}"
    );

    let bomb = "[".repeat(1_000_000);
    assert!(matches!(
        parse(bomb.as_bytes()),
        Err(ListError::Json { .. })
    ));
    let bomb = "{\"a\":".repeat(200_000);
    assert!(matches!(
        parse(bomb.as_bytes()),
        Err(ListError::Json { .. })
    ));
}

#[test]
fn legacy_lists_must_fit_the_depth_limit_once_wrapped() {
    let mut body = body_json(vec![image_with_id("a")]);
    let mut deep = json!(1);
    for _ in 0..63 {
        deep = json!([deep]);
    }
    body["x:deep"] = deep;
    // Wrapped: 1 (document) + 1 (body) + 63 = 65 > 64.
    assert!(parse_body(body.clone()).is_err());
    // Legacy: 1 + 63 = 64 as read, but 65 once re-emitted with the wrapper.
    let legacy = serde_json::to_vec(&body).unwrap();
    let e = parse(&legacy).unwrap_err();
    assert!(
        matches!(&e, ListError::Json { message } if message.contains("once wrapped")),
        "{e}"
    );
    body["x:deep"] = body["x:deep"][0].clone();
    let legacy = serde_json::to_vec(&body).unwrap();
    let p = parse(&legacy).unwrap();
    let out = serde_json::to_vec(&p.list.to_document()).unwrap();
    assert_eq!(parse(&out).unwrap().list, p.list);
}

#[test]
fn duplicate_keys_are_rejected() {
    let text = String::from_utf8(doc(body_json(vec![]))).unwrap();
    let dup = text.replacen(
        "\"hv:version\":\"1\"",
        "\"hv:version\":\"1\",\"hv:version\":\"9\"",
        1,
    );
    assert_ne!(dup, text);
    let e = parse(dup.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, ListError::Json { message } if message.contains("duplicate")),
        "{e}"
    );
}

#[test]
fn warnings_are_capped() {
    let images = (0..MAX_WARNINGS + 10)
        .map(|i| {
            let mut img = image_json();
            img["dc:identifier"] = json!(format!("id-{i}"));
            img["ad:appid"] = json!(i);
            json!({ "hv:image": img })
        })
        .collect();
    let p = parse_body(body_json(images)).unwrap();
    assert_eq!(p.list.images.len(), MAX_WARNINGS + 10);
    assert_eq!(p.warnings.len(), MAX_WARNINGS + 1);
    assert!(p.warnings.last().unwrap().contains("10 more"));
}

/// A cheap stand-in for the fuzz target: every prefix and many single-byte
/// mutations of real lists must give a result, never a panic.
#[test]
fn never_panics_on_mangled_input() {
    let sources = [
        real_list!("cloudkeeper-imagelist01.unsigned").to_vec(),
        real_list!("hepixvmitrust-imagelist.json").to_vec(),
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let specials = b"{}[]\":,-0123456789eE.\\ \0\xff";
    for src in &sources {
        for end in (0..src.len()).step_by(7) {
            let _ = parse(&src[..end]);
        }
        for _ in 0..3000 {
            let mut m = src.clone();
            for _ in 0..(1 + next() % 4) {
                let pos = (next() % m.len() as u64) as usize;
                match next() % 3 {
                    0 => m[pos] = specials[(next() % specials.len() as u64) as usize],
                    1 => {
                        m.remove(pos);
                    }
                    _ => m.insert(pos, specials[(next() % specials.len() as u64) as usize]),
                }
            }
            if let Ok(p) = parse(&m) {
                // Whatever parsed must serialize and parse back equal.
                let out = serde_json::to_vec(&p.list.to_document()).unwrap();
                assert_eq!(parse(&out).unwrap().list, p.list);
            }
        }
    }
}

// -------------------------------------------------------- image-level errors

#[test]
fn every_required_image_key_is_required() {
    for key in [
        "dc:identifier",
        "dc:title",
        "dc:description",
        "hv:uri",
        "hv:size",
        "sl:checksum:sha512",
        "sl:arch",
        "sl:os",
        "sl:osversion",
        "sl:comments",
        "hv:hypervisor",
        "hv:version",
    ] {
        let mut bad = image_json();
        bad.as_object_mut().unwrap().remove(key);
        let p = parse_body(body_json(vec![
            image_with_id("good-1"),
            json!({ "hv:image": bad }),
            image_with_id("good-2"),
        ]))
        .unwrap();
        let ids: Vec<_> = p
            .list
            .images()
            .iter()
            .map(|i| i.identifier.as_str())
            .collect();
        assert_eq!(ids, ["good-1", "good-2"], "{key}");
        assert_eq!(p.rejected.len(), 1);
        let r = &p.rejected[0];
        assert_eq!(r.index, 1);
        assert_eq!(r.reason, "missing-field", "{key}");
        assert!(r.message.contains(key), "{}", r.message);
        if key != "dc:identifier" {
            assert_eq!(
                r.identifier.as_deref(),
                Some("488dcdc4-9ab1-4fc8-a7ba-b7a5428ecb3d")
            );
        } else {
            assert_eq!(r.identifier, None);
        }
    }
}

#[test]
fn wrong_types_of_image_keys() {
    let cases = [
        ("dc:identifier", "invalid-field"),
        ("dc:title", "invalid-field"),
        ("hv:uri", "invalid-field"),
        ("sl:comments", "invalid-field"),
        ("hv:version", "invalid-field"),
        ("hv:size", "invalid-size"),
        ("sl:checksum:sha512", "invalid-checksum"),
        ("dc:date:expires", "invalid-timestamp"),
        ("hv:ram_minimum", "invalid-field"),
        ("hv:core_minimum", "invalid-field"),
    ];
    for (key, code) in cases {
        let p = parse_one(|m| {
            m.insert(key.to_owned(), json!([true]));
        });
        assert_eq!(rejected_reason(&p), code, "{key}");
    }
}

#[test]
fn sizes_accept_integers_and_decimal_strings() {
    for (v, want) in [
        (json!(0), 0u64),
        (json!(1024), 1024),
        (json!("1024"), 1024),
        (json!("0012"), 12),
        (json!(u64::MAX), u64::MAX),
        (json!(u64::MAX.to_string()), u64::MAX),
    ] {
        let p = parse_one(|m| {
            m.insert("hv:size".into(), v.clone());
        });
        assert_eq!(p.list.images()[0].size, want, "{v}");
    }
}

#[test]
fn sizes_reject_negatives_fractions_and_garbage() {
    for v in [
        json!(-1),
        json!("-1"),
        json!(1.5),
        json!(1024.0),
        json!(1e3),
        json!("1e3"),
        json!("1.5"),
        json!(""),
        json!(" 1"),
        json!("1 "),
        json!("+1"),
        json!("0x10"),
        json!("١٢"),
        json!("18446744073709551616"),
        json!("99999999999999999999999999999"),
        json!(true),
        json!(null),
        json!({}),
    ] {
        let p = parse_one(|m| {
            m.insert("hv:size".into(), v.clone());
        });
        assert_eq!(rejected_reason(&p), "invalid-size", "{v}");
    }
    // A JSON integer beyond u64 is read as a float: not an integer.
    let text = String::from_utf8(doc(body_json(vec![image_with_id("a")]))).unwrap();
    let huge = text.replace("2147483648", "184467440737095516160");
    let p = parse(huge.as_bytes()).unwrap();
    assert_eq!(rejected_reason(&p), "invalid-size");
}

#[test]
fn ram_and_core_minimum() {
    let p = parse_one(|m| {
        m.insert("hv:ram_minimum".into(), json!(2048));
        m.insert("hv:core_minimum".into(), json!("2"));
    });
    let img = &p.list.images()[0];
    assert_eq!((img.ram_minimum, img.core_minimum), (Some(2048), Some(2)));
    for key in ["hv:ram_minimum", "hv:core_minimum"] {
        for v in [json!(-2), json!("2GB"), json!(0.5)] {
            let p = parse_one(|m| {
                m.insert(key.into(), v.clone());
            });
            assert_eq!(rejected_reason(&p), "invalid-field", "{key} {v}");
            assert!(p.rejected[0].message.contains(key));
        }
        let p = parse_one(|m| {
            m.insert(key.into(), Value::Null);
        });
        assert_eq!(p.list.images()[0].extra[key], Value::Null);
    }
}

#[test]
fn recommended_counts_are_lenient() {
    let p = parse_one(|m| {
        m.insert("ad:ram_recommended".into(), json!("lots"));
        m.insert("ad:core_recommended".into(), json!(8));
    });
    let img = &p.list.images()[0];
    assert_eq!(img.ram_recommended, None);
    assert_eq!(img.core_recommended, Some(8));
    assert_eq!(img.extra["ad:ram_recommended"], json!("lots"));
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].contains("ad:ram_recommended"));
}

#[test]
fn checksums() {
    let p = parse_one(|m| {
        m.insert("sl:checksum:sha512".into(), json!(SHA_A.to_uppercase()));
    });
    let img = &p.list.images()[0];
    assert_eq!(img.sha512.as_str(), SHA_A);
    assert!(img.sha512_matches(SHA_A));
    assert!(img.sha512_matches(&SHA_A.to_uppercase()));
    assert!(!img.sha512_matches(&SHA_A[1..]));
    for bad in [
        "".to_owned(),
        SHA_A[..127].to_owned(),
        format!("{SHA_A}a"),
        SHA_A.replace('8', "z"),
        format!("sha512:{}", &SHA_A[7..]),
    ] {
        let p = parse_one(|m| {
            m.insert("sl:checksum:sha512".into(), json!(bad));
        });
        assert_eq!(rejected_reason(&p), "invalid-checksum", "{bad}");
    }
}

#[test]
fn unsafe_identifiers_are_rejected_and_reported_sanitised() {
    for bad in [
        "../../etc/cron.d/x",
        "",
        ".hidden",
        "a b",
        "a\u{1b}[2J",
        "x/y",
        "-rf",
    ] {
        let p = parse_one(|m| {
            m.insert("dc:identifier".into(), json!(bad));
        });
        assert_eq!(rejected_reason(&p), "unsafe-identifier", "{bad:?}");
        let reported = p.rejected[0].identifier.as_deref().unwrap();
        assert!(!reported.contains('\u{1b}'));
    }
}

#[test]
fn per_image_expiry() {
    let p = parse_one(|m| {
        m.insert("dc:date:expires".into(), json!("2030-01-01T00:00:00Z"));
    });
    let img = &p.list.images()[0];
    let at = parse_timestamp("2030-01-01T00:00:00Z").unwrap();
    assert_eq!(img.expires, Some(at));
    assert!(img.is_expired(at));
    assert!(!img.is_expired(parse_timestamp("2029-12-31T23:59:59Z").unwrap()));
    for bad in ["2030-01-01", "2030-01-01T00:00:00+01:00", "never"] {
        let p = parse_one(|m| {
            m.insert("dc:date:expires".into(), json!(bad));
        });
        assert_eq!(rejected_reason(&p), "invalid-timestamp", "{bad}");
    }
    let p = parse_one(|m| {
        m.insert("dc:date:expires".into(), Value::Null);
    });
    assert_eq!(p.list.images()[0].expires, None);
    assert!(!p.list.images()[0].is_expired(at));
}

#[test]
fn empty_image_uri_is_rejected() {
    let p = parse_one(|m| {
        m.insert("hv:uri".into(), json!(""));
    });
    assert_eq!(rejected_reason(&p), "invalid-field");
}

#[test]
fn duplicate_identifiers_reject_every_occurrence() {
    let mut bad_dup = image_json();
    bad_dup["dc:identifier"] = json!("A");
    bad_dup["sl:checksum:sha512"] = json!("nope");
    let p = parse_body(body_json(vec![
        image_with_id("a"),
        image_with_id("b"),
        image_with_id("A"),
        json!({ "hv:image": bad_dup }),
        image_with_id("c"),
    ]))
    .unwrap();
    let ids: Vec<_> = p
        .list
        .images()
        .iter()
        .map(|i| i.identifier.as_str())
        .collect();
    assert_eq!(ids, ["b", "c"]);
    let got: Vec<_> = p
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (0, "duplicate-identifier"),
            (2, "duplicate-identifier"),
            (3, "invalid-checksum")
        ]
    );
    assert!(
        p.rejected[0].message.contains("3 entries"),
        "{}",
        p.rejected[0].message
    );
    assert!(
        p.rejected[0].message.contains("[2, 3]"),
        "{}",
        p.rejected[0].message
    );
}

#[test]
fn malformed_entries() {
    let p = parse_body(body_json(vec![
        json!(1),
        json!({}),
        json!({"hv:image": "x"}),
        json!(image_json()),
        image_with_id("ok"),
    ]))
    .unwrap();
    assert_eq!(p.list.images().len(), 1);
    let got: Vec<_> = p
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str(), r.identifier.is_none()))
        .collect();
    assert_eq!(
        got,
        [
            (0, "malformed-image", true),
            (1, "malformed-image", true),
            (2, "malformed-image", true),
            (3, "malformed-image", true),
        ]
    );
}

#[test]
fn keys_beside_hv_image_warn() {
    let mut entry = image_with_id("a");
    entry["extra"] = json!(1);
    let p = parse_body(body_json(vec![entry])).unwrap();
    assert_eq!(p.list.images().len(), 1);
    assert!(p.warnings[0].contains("\"extra\""), "{:?}", p.warnings);
}

#[test]
fn informational_image_keys_of_other_types_are_kept() {
    let p = parse_one(|m| {
        m.insert("ad:appid".into(), json!(1017));
        m.insert("hv:format".into(), Value::Null);
        m.insert("sl:osname".into(), json!("CentOS"));
    });
    let img = &p.list.images()[0];
    assert_eq!(img.appid, None);
    assert_eq!(img.extra["ad:appid"], json!(1017));
    assert_eq!(img.format, None);
    assert_eq!(img.extra["hv:format"], Value::Null);
    assert_eq!(img.osname.as_deref(), Some("CentOS"));
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains("image 0 (488dcdc4"));
    let out = serde_json::to_value(img).unwrap();
    assert_eq!(out["ad:appid"], json!(1017));
    assert_eq!(out["hv:format"], Value::Null);
}

// ------------------------------------------------- one-pass reader specifics

#[test]
fn keys_left_in_place_keep_their_document_position() {
    let mut img = serde_json::Map::new();
    img.insert("x:first".into(), json!(1));
    for (k, v) in image_json().as_object().unwrap() {
        img.insert(k.clone(), v.clone());
        if k == "dc:title" {
            img.insert("hv:format".into(), Value::Null);
            img.insert("x:middle".into(), json!(2));
        }
    }
    img.insert("ad:appid".into(), json!(7));
    img.insert("x:last".into(), json!(3));
    let p = parse_body(body_json(vec![json!({ "hv:image": img })])).unwrap();
    let keys: Vec<&str> = p.list.images()[0]
        .extra
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["x:first", "hv:format", "x:middle", "ad:appid", "x:last"]
    );
}

#[test]
fn keys_beside_the_wrapper_are_listed_in_document_order() {
    let text = format!(
        r#"{{"a": 1, "hv:images": [], "hv:imagelist": {}, "b": 2}}"#,
        serde_json::to_string(&body_json(vec![])).unwrap()
    );
    let p = parse(text.as_bytes()).unwrap();
    assert_eq!(
        p.warnings,
        [r#"keys beside "hv:imagelist" at the top level are ignored: "a", "hv:images", "b""#]
    );
}

#[test]
fn duplicates_counted_from_an_earlier_rejected_entry() {
    let mut bad = image_json();
    bad["dc:identifier"] = json!("A");
    bad["hv:size"] = json!("big");
    let p = parse_body(body_json(vec![
        json!({ "hv:image": bad }),
        image_with_id("a"),
        image_with_id("b"),
        image_with_id("a"),
    ]))
    .unwrap();
    let ids: Vec<_> = p
        .list
        .images()
        .iter()
        .map(|i| i.identifier.as_str())
        .collect();
    assert_eq!(ids, ["b"]);
    let got: Vec<_> = p
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str(), r.identifier.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (0, "invalid-size", Some("A")),
            (1, "duplicate-identifier", Some("a")),
            (3, "duplicate-identifier", Some("a")),
        ]
    );
    assert!(
        p.rejected[1].message.contains("[0, 3]"),
        "{}",
        p.rejected[1].message
    );
}

#[test]
fn duplicate_keys_inside_images_are_rejected() {
    let text = String::from_utf8(doc(body_json(vec![image_with_id("a")]))).unwrap();
    for (from, to) in [
        // A modelled key, once plainly and once with an escape.
        ("\"dc:title\":", "\"dc:t\\u0069tle\":\"x\",\"dc:title\":"),
        // An unknown key.
        ("\"dc:title\":", "\"x:k\":1,\"x:k\":2,\"dc:title\":"),
        // The wrapper key.
        ("{\"hv:image\":", "{\"hv:image\":1,\"hv:image\":"),
    ] {
        let dup = text.replacen(from, to, 1);
        assert_ne!(dup, text);
        let e = parse(dup.as_bytes()).unwrap_err();
        assert!(
            matches!(&e, ListError::Json { message } if message.contains("duplicate")),
            "{to}: {e}"
        );
    }
}

#[test]
fn list_warnings_come_before_image_warnings() {
    let mut img = image_json();
    img["ad:appid"] = json!(1);
    let mut body = body_json(vec![json!({ "hv:image": img })]);
    body["ad:swid"] = json!(2);
    let p = parse_body(body).unwrap();
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(
        p.warnings[0].starts_with("list: ad:swid"),
        "{:?}",
        p.warnings
    );
    assert!(p.warnings[1].starts_with("image 0 ("), "{:?}", p.warnings);
}
