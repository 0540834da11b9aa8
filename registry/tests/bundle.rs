//! Bundles: what is packed verifies; any change to what is signed, any key
//! not trusted, any entry that is not one of the four regular files is
//! refused with its cause named.

mod support;

use jiandu_registry::bundle::{pack, Bundle, Signer, MAX_TOML};
use jiandu_registry::keys::UnitKey;
use jiandu_registry::Error;
use support::{data_offset, read_tar, replace, write_tar, Raw};

const TOML: &str = "name = \"disability-fund-arrears\"\nversion = \"1.0.0\"\ntitle = \"残保金漏征监督模型\"\nunit = \"阿克苏地区人民检察院\"\nsdk = \"^0.1\"\n";
const WASM: &[u8] = b"\0asm\x0d\0\x01\0 a component would be here, long enough to flip bytes in";

fn signed_by(key: &UnitKey) -> Vec<u8> {
    let signer = Signer {
        key,
        unit: "阿克苏地区人民检察院",
        code: "11652900MB0000000A",
    };
    pack(
        TOML.as_bytes(),
        WASM,
        &signer,
        "2024-03-01T09:00:00.000+08:00",
    )
    .unwrap()
}

fn verify(bytes: &[u8], trusted: &UnitKey) -> Result<(), Error> {
    let public = trusted.public();
    Bundle::read(bytes, "m.jiandu")?
        .verify(&|k| *k == public)
        .map(|_| ())
}

#[test]
fn packed_bundle_is_a_tar_of_the_four_files_and_verifies() {
    let key = UnitKey::generate().unwrap();
    let bytes = signed_by(&key);
    let names: Vec<String> = read_tar(&bytes).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["model.toml", "model.wasm", "release.json", "release.sig"]
    );
    verify(&bytes, &key).unwrap();
    let b = Bundle::read(&bytes, "m.jiandu").unwrap();
    let r = b.release();
    assert_eq!(r.id(), "disability-fund-arrears@1.0.0");
    assert_eq!(r.sdk, "^0.1");
    assert_eq!(r.publisher.key, key.public().to_hex());
    assert_eq!(r.files["model.wasm"].size, WASM.len() as u64);
}

#[test]
fn every_byte_of_the_wasm_changed_is_a_digest_mismatch_naming_model_wasm() {
    let key = UnitKey::generate().unwrap();
    let bytes = signed_by(&key);
    let at = data_offset(&bytes, "model.wasm");
    for i in 0..WASM.len() {
        let mut t = bytes.clone();
        t[at + i] ^= 0x01;
        let err = verify(&t, &key).unwrap_err();
        assert!(
            matches!(&err, Error::DigestMismatch { file, .. } if *file == "model.wasm"),
            "byte {i}: {err}"
        );
    }
}

#[test]
fn one_byte_of_the_toml_changed_is_a_digest_mismatch_naming_model_toml() {
    let key = UnitKey::generate().unwrap();
    let mut bytes = signed_by(&key);
    let at = data_offset(&bytes, "model.toml") + TOML.find("1.0.0").unwrap();
    bytes[at] = b'9';
    let err = verify(&bytes, &key).unwrap_err().to_string();
    assert!(
        err.contains("digest mismatch") && err.contains("model.toml"),
        "{err}"
    );
}

#[test]
fn one_byte_of_the_signature_changed_is_a_bad_signature() {
    let key = UnitKey::generate().unwrap();
    let bytes = signed_by(&key);
    let at = data_offset(&bytes, "release.sig");
    for (i, replacement) in [(0, None), (17, None), (127, None), (128, Some(b'0'))] {
        let mut t = bytes.clone();
        t[at + i] = replacement.unwrap_or(if t[at + i] == b'0' { b'1' } else { b'0' });
        let err = verify(&t, &key).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "byte {i}: {err}");
        assert!(
            err.to_string().contains(&key.public().fingerprint()),
            "{err}"
        );
    }
}

#[test]
fn changing_the_statement_breaks_the_signature() {
    let key = UnitKey::generate().unwrap();
    let bytes = signed_by(&key);
    let entries = read_tar(&bytes);
    let release = String::from_utf8(entries[2].1.clone()).unwrap();
    let forged = release.replace("2024-03-01", "2025-03-01");
    let err = verify(&replace(&entries, "release.json", forged.as_bytes()), &key).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
}

#[test]
fn bundle_signed_by_a_key_not_trusted_names_that_key() {
    let publisher = UnitKey::generate().unwrap();
    let trusted = UnitKey::generate().unwrap();
    let err = verify(&signed_by(&publisher), &trusted).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::UnknownKey { .. }), "{text}");
    assert!(text.contains(&publisher.public().fingerprint()), "{text}");
    assert!(text.contains(&publisher.public().to_hex()), "{text}");
}

#[test]
fn a_statement_claiming_a_trusted_key_but_signed_by_another_is_a_bad_signature() {
    let trusted = UnitKey::generate().unwrap();
    let forger = UnitKey::generate().unwrap();
    let bytes = signed_by(&forger);
    let entries = read_tar(&bytes);
    let release = String::from_utf8(entries[2].1.clone())
        .unwrap()
        .replace(&forger.public().to_hex(), &trusted.public().to_hex())
        .replace(
            &forger.public().fingerprint(),
            &trusted.public().fingerprint(),
        );
    let err = verify(
        &replace(&entries, "release.json", release.as_bytes()),
        &trusted,
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
}

fn good_entries(key: &UnitKey) -> Vec<(String, Vec<u8>)> {
    read_tar(&signed_by(key))
}

fn with_extra(key: &UnitKey, extra: Raw) -> Vec<u8> {
    let entries = good_entries(key);
    let mut raws: Vec<Raw> = vec![extra];
    raws.extend(entries.iter().map(|(n, d)| Raw::file(n, d)));
    write_tar(&raws)
}

#[test]
fn dotdot_and_absolute_paths_are_refused_as_traversal() {
    let key = UnitKey::generate().unwrap();
    for name in [
        "../model.wasm",
        "../../etc/cron.d/x",
        "a/../../b",
        "/etc/passwd",
    ] {
        let err = verify(&with_extra(&key, Raw::file(name, b"x")), &key).unwrap_err();
        assert!(
            matches!(&err, Error::PathTraversal { entry } if entry == name),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("path traversal"), "{err}");
    }
}

#[test]
fn symlinks_and_hard_links_are_refused_naming_the_link() {
    let key = UnitKey::generate().unwrap();
    let entries = good_entries(&key);
    for kind in [b'2', b'1'] {
        // The link takes the place of model.wasm.
        let raws: Vec<Raw> = entries
            .iter()
            .map(|(n, d)| {
                if n == "model.wasm" {
                    Raw {
                        name: n,
                        kind,
                        link: "/etc/passwd",
                        data: b"",
                    }
                } else {
                    Raw::file(n, d)
                }
            })
            .collect();
        let err = verify(&write_tar(&raws), &key).unwrap_err();
        assert!(
            matches!(&err, Error::Link { entry, target } if entry == "model.wasm" && target == "/etc/passwd"),
            "{err}"
        );
        assert!(err.to_string().contains("is a link"), "{err}");
    }
}

#[test]
fn directories_unknown_names_duplicates_and_missing_files_are_refused() {
    let key = UnitKey::generate().unwrap();
    let err = verify(
        &with_extra(
            &key,
            Raw {
                name: "bin/",
                kind: b'5',
                link: "",
                data: b"",
            },
        ),
        &key,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`bin/` is a directory"), "{err}");
    let err = verify(&with_extra(&key, Raw::file("README", b"x")), &key).unwrap_err();
    assert!(matches!(err, Error::UnexpectedEntry { .. }), "{err}");
    let err = verify(&with_extra(&key, Raw::file("model.wasm", b"x")), &key).unwrap_err();
    assert!(matches!(err, Error::DuplicateEntry { .. }), "{err}");
    let entries = good_entries(&key);
    let without_sig: Vec<Raw> = entries
        .iter()
        .filter(|(n, _)| n != "release.sig")
        .map(|(n, d)| Raw::file(n, d))
        .collect();
    let err = verify(&write_tar(&without_sig), &key).unwrap_err();
    assert!(
        err.to_string().contains("bundle has no `release.sig`"),
        "{err}"
    );
}

#[test]
fn oversized_entries_are_refused_before_being_read() {
    let key = UnitKey::generate().unwrap();
    let entries = good_entries(&key);
    let big = vec![b'#'; MAX_TOML as usize + 1];
    let err = verify(&replace(&entries, "model.toml", &big), &key).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("model.toml"), "{err}");
}

#[test]
fn garbage_is_not_a_bundle() {
    let key = UnitKey::generate().unwrap();
    let err = verify(b"PK\x03\x04 this is a zip", &key).unwrap_err();
    assert!(
        err.to_string().contains("m.jiandu is not a Jiandu bundle"),
        "{err}"
    );
}
