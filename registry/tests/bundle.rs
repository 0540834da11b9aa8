//! Bundles: what is packed verifies; any change to what is signed, any key
//! not trusted, any entry that is not one of the four regular files is
//! refused with its cause named.

mod support;

use jiandu_registry::bundle::{pack, Bundle, Signer, MAX_TOML};
use jiandu_registry::keys::UnitKey;
use jiandu_registry::Error;
use support::{data_offset, read_tar, replace, with_header_field, write_tar, Raw};

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
        None,
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
    for i in [0, 17, 127] {
        let mut t = bytes.clone();
        t[at + i] = if t[at + i] == b'0' { b'1' } else { b'0' };
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

/// `Bundle::read` must refuse `bytes` as not canonical, naming `region`.
fn not_canonical(bytes: &[u8], key: &UnitKey, case: &str, region: &str) {
    let err = verify(bytes, key).unwrap_err();
    assert!(
        matches!(err, Error::NotCanonical { .. }),
        "{case}: expected a canonical-form refusal, got: {err}"
    );
    assert!(err.to_string().contains(region), "{case}: {err}");
}

#[test]
fn an_independent_tar_writer_gives_the_packed_bytes_exactly() {
    let key = UnitKey::generate().unwrap();
    let bytes = signed_by(&key);
    let entries = read_tar(&bytes);
    let raws: Vec<Raw> = entries.iter().map(|(n, d)| Raw::file(n, d)).collect();
    assert_eq!(write_tar(&raws), bytes);
}

#[test]
fn every_single_byte_of_a_bundle_changed_is_refused() {
    let key = UnitKey::generate().unwrap();
    let bytes = signed_by(&key);
    // Headers, data, padding and end blocks: about 5 KiB, every byte.
    assert!(bytes.len() > 4096, "{}", bytes.len());
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x20, 0x80] {
            let mut t = bytes.clone();
            t[at] ^= mask;
            assert!(
                verify(&t, &key).is_err(),
                "byte {at} xor {mask:#04x} was accepted"
            );
        }
    }
    verify(&bytes, &key).unwrap();
}

#[test]
fn bytes_after_or_missing_from_the_end_of_the_archive_are_refused() {
    let key = UnitKey::generate().unwrap();
    let bytes = signed_by(&key);
    let mut one_more_zero_block = bytes.clone();
    one_more_zero_block.extend_from_slice(&[0u8; 512]);
    not_canonical(
        &one_more_zero_block,
        &key,
        "another zero block",
        "after the end of the archive",
    );
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(b"#!/bin/sh\n");
    not_canonical(&trailing, &key, "a trailing script", "after the end");
    not_canonical(
        &bytes[..bytes.len() - 512],
        &key,
        "one end block",
        "ends before its two end-of-archive blocks",
    );
    not_canonical(
        &bytes[..bytes.len() - 1024],
        &key,
        "no end blocks",
        "ends before its two end-of-archive blocks",
    );
    let mut marked_end = bytes.clone();
    let last = marked_end.len() - 1;
    marked_end[last] = b'x';
    not_canonical(
        &marked_end,
        &key,
        "a byte in the end blocks",
        "end-of-archive",
    );
}

#[test]
fn non_zero_padding_is_refused() {
    let key = UnitKey::generate().unwrap();
    let bytes = signed_by(&key);
    for (name, len) in [("model.toml", TOML.len()), ("model.wasm", WASM.len())] {
        let mut t = bytes.clone();
        t[data_offset(&bytes, name) + len] = b' ';
        not_canonical(&t, &key, name, &format!("padding after `{name}`"));
    }
}

#[test]
fn header_fields_other_than_what_the_packer_writes_are_refused() {
    let key = UnitKey::generate().unwrap();
    let bytes = signed_by(&key);
    let cases: [(&str, usize, &[u8]); 7] = [
        ("mode 0755", 100, b"0000755\0"),
        ("an mtime", 136, b"14000000000\0"),
        ("a uid", 108, b"0001750\0"),
        ("an owner name", 265, b"root"),
        ("the GNU magic", 257, b"ustar  \0"),
        ("a name prefix", 345, b"x"),
        ("contiguous file type", 156, b"7"),
    ];
    for (case, offset, value) in cases {
        let t = with_header_field(&bytes, "model.wasm", offset, value);
        let err = verify(&t, &key).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotCanonical { .. } | Error::UnexpectedEntry { .. }
            ),
            "{case}: {err}"
        );
    }
    // The checksum written in another valid form (six digits, NUL, space,
    // as some tar writers do) still sums right, and is still refused.
    let at = data_offset(&bytes, "model.wasm") - 512;
    let mut t = bytes.clone();
    let sum = std::str::from_utf8(&t[at + 148..at + 155])
        .unwrap()
        .to_string();
    t[at + 148..at + 156].copy_from_slice(format!("{}\0 ", &sum[1..]).as_bytes());
    not_canonical(&t, &key, "checksum form", "tar header of `model.wasm`");
}

#[test]
fn entries_in_another_order_or_behind_a_pax_header_are_refused() {
    let key = UnitKey::generate().unwrap();
    let entries = good_entries(&key);
    let mut swapped: Vec<Raw> = entries.iter().map(|(n, d)| Raw::file(n, d)).collect();
    swapped.swap(0, 1);
    not_canonical(
        &write_tar(&swapped),
        &key,
        "order",
        "tar header of `model.toml`",
    );
    // A pax extended header that only sets an mtime: the files read the
    // same, the bytes (and so the sha256) differ.
    let pax = Raw {
        name: "PaxHeaders/model.toml",
        kind: b'x',
        link: "",
        data: b"11 mtime=5\n",
    };
    let mut with_pax = vec![pax];
    with_pax.extend(entries.iter().map(|(n, d)| Raw::file(n, d)));
    let err = verify(&write_tar(&with_pax), &key).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotCanonical { .. } | Error::NotRegularFile { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_signature_in_upper_case_or_with_other_whitespace_is_refused() {
    let key = UnitKey::generate().unwrap();
    let entries = good_entries(&key);
    let sig = String::from_utf8(entries[3].1.clone()).unwrap();
    let hex = sig.trim_end();
    for (case, text) in [
        ("upper case", format!("{}\n", hex.to_uppercase())),
        ("no newline", hex.to_string()),
        ("CRLF", format!("{hex}\r\n")),
        ("a trailing space", format!("{hex} \n")),
        ("a leading space", format!(" {hex}\n")),
        ("two newlines", format!("{hex}\n\n")),
    ] {
        not_canonical(
            &replace(&entries, "release.sig", text.as_bytes()),
            &key,
            case,
            "release.sig is not 128 lowercase hex characters",
        );
    }
}

/// A scripted model: its manifest names a plan, which the bundle carries.
const PLAN_TOML: &str = "name = \"arrears-plan\"\nversion = \"1.0.0\"\nplan = \"rule.plan.toml\"\ntitle = \"残保金漏征监督模型\"\nunit = \"阿克苏地区人民检察院\"\nsdk = \"^0.2\"\n";
const PLAN: &[u8] =
    b"format = 1\n[[step]]\nname = \"employers\"\nop = \"read\"\ndataset = \"employers\"\n";

fn plan_signer(key: &UnitKey) -> Signer<'_> {
    Signer {
        key,
        unit: "阿克苏地区人民检察院",
        code: "11652900MB0000000A",
    }
}

#[test]
fn a_scripted_model_bundle_carries_its_plan_signed_like_the_other_files() {
    let key = UnitKey::generate().unwrap();
    let bytes = pack(
        PLAN_TOML.as_bytes(),
        WASM,
        Some(PLAN),
        &plan_signer(&key),
        "2024-03-01T09:00:00.000+08:00",
    )
    .unwrap();
    let names: Vec<String> = read_tar(&bytes).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "model.toml",
            "model.wasm",
            "model.plan",
            "release.json",
            "release.sig"
        ]
    );
    verify(&bytes, &key).unwrap();
    let b = Bundle::read(&bytes, "p.jiandu").unwrap();
    assert_eq!(b.model_plan(), Some(PLAN));
    assert_eq!(b.release().files["model.plan"].size, PLAN.len() as u64);

    // One byte of the plan changed: a digest mismatch naming it.
    let mut changed = bytes.clone();
    changed[data_offset(&bytes, "model.plan") + 3] ^= 0x01;
    let err = verify(&changed, &key).unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { file, .. } if *file == "model.plan"),
        "{err}"
    );

    // The plan left out of a bundle whose manifest names it, or a plan
    // packed for a manifest that names none, is refused at packing.
    let err = pack(
        PLAN_TOML.as_bytes(),
        WASM,
        None,
        &plan_signer(&key),
        "2024-03-01T09:00:00.000+08:00",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("rule.plan.toml"), "{err}");
    assert!(pack(
        TOML.as_bytes(),
        WASM,
        Some(PLAN),
        &plan_signer(&key),
        "2024-03-01T09:00:00.000+08:00",
    )
    .is_err());

    // A signed bundle whose manifest names a plan it does not hold, as
    // someone could put together by hand: refused when verified.
    let entries: Vec<(String, Vec<u8>)> = read_tar(&bytes)
        .into_iter()
        .filter(|(n, _)| n != "model.plan")
        .collect();
    let raw: Vec<Raw> = entries.iter().map(|(n, d)| Raw::file(n, d)).collect();
    let stripped = write_tar(&raw);
    assert!(verify(&stripped, &key).is_err());
}
