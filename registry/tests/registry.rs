//! Directory registries and fetching from them (and from their HTTP front):
//! publish, search, yank by the publisher only, semver resolution, and every
//! check `fetch` makes before a host sees a bundle.

mod support;

use jiandu_registry::bundle::{pack, Signer};
use jiandu_registry::dir::{Change, DirRegistry, Published};
use jiandu_registry::http::Server;
use jiandu_registry::index::{IndexState, SignedIndex, YankAction};
use jiandu_registry::keys::{PublicKey, UnitKey};
use jiandu_registry::source::{fetch, search, Checks, Fetched, Source};
use jiandu_registry::{Error, Result};
use std::path::Path;

const NAME: &str = "disability-fund-arrears";
/// When the test registries are written.
const PUBLISHED: &str = "2024-03-02T10:00:00.000+08:00";
/// When they are read: within the default year of validity.
const NOW: &str = "2024-06-01T10:00:00+08:00";

fn toml(version: &str) -> String {
    format!("name = \"{NAME}\"\nversion = \"{version}\"\ntitle = \"残保金漏征监督模型\"\ndescription = \"Employers who paid less fund than due\"\nunit = \"阿克苏\"\nsdk = \"^0.1\"\n")
}

fn bundle(key: &UnitKey, version: &str, wasm: &[u8]) -> Vec<u8> {
    let signer = Signer {
        key,
        unit: "阿克苏地区人民检察院",
        code: "11652900MB0000000A",
    };
    pack(
        toml(version).as_bytes(),
        wasm,
        None,
        &signer,
        "2024-03-01T09:00:00.000+08:00",
    )
    .unwrap()
}

fn publish(reg: &DirRegistry, key: &UnitKey, bytes: &[u8]) -> Result<Published> {
    reg.publish(bytes, "bundle", key, PUBLISHED, 365)
}

fn change<'a>(key: &'a UnitKey, reason: Option<&'a str>) -> Change<'a> {
    Change {
        key,
        now: PUBLISHED,
        reason,
        valid_days: 365,
    }
}

fn yank(reg: &DirRegistry, key: &UnitKey, version: &str, reason: Option<&str>) -> Result<bool> {
    let v = semver::Version::parse(version).unwrap();
    reg.set_yanked(NAME, &v, YankAction::Yank, &change(key, reason))
        .map(|s| s.is_some())
}

fn req(s: &str) -> semver::VersionReq {
    jiandu_registry::index::parse_spec(&format!("{NAME}@{s}"))
        .unwrap()
        .1
}

fn fetch_trusting(source: &Source, spec: &str, key: &UnitKey) -> Result<Fetched> {
    fetch_seen(source, spec, key, None, NOW)
}

/// `fetch` by an importer that trusts `key` and last saw `seen`.
fn fetch_seen(
    source: &Source,
    spec: &str,
    key: &UnitKey,
    seen: Option<&IndexState>,
    now: &str,
) -> Result<Fetched> {
    let public: PublicKey = key.public();
    let checks = Checks {
        is_trusted: &|k| *k == public,
        seen: &|registry| seen.filter(|s| s.registry == registry).cloned(),
        now,
    };
    fetch(source, NAME, &req(spec), &checks)
}

fn fetch_trusting_anyone(source: &Source, name: &str) -> Result<Fetched> {
    let checks = Checks {
        is_trusted: &|_| true,
        seen: &|_| None,
        now: NOW,
    };
    fetch(source, name, &semver::VersionReq::STAR, &checks)
}

fn registry_with(key: &UnitKey, versions: &[&str]) -> (tempfile::TempDir, DirRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let reg = DirRegistry::new(dir.path().join("registry"));
    for v in versions {
        publish(&reg, key, &bundle(key, v, format!("wasm {v}").as_bytes())).unwrap();
    }
    (dir, reg)
}

#[test]
fn published_versions_are_listed_with_digests_and_publisher() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0", "1.1.0"]);
    assert!(reg.index_path(NAME).is_file());
    assert!(reg.bundle_path(NAME, "1.1.0").is_file());
    let index = reg.read_index(NAME).unwrap().unwrap().signed;
    assert_eq!(index.available(), ["1.1.0", "1.0.0"]);
    assert_eq!(index.version, 2, "one signed index version per publish");
    assert_eq!(index.registry, reg.id().unwrap().unwrap());
    let e = &index.versions[1];
    assert_eq!(index.publisher.fingerprint, key.public().fingerprint());
    assert_eq!(e.title, "残保金漏征监督模型");
    assert_eq!(
        e.bundle_sha256,
        jiandu_registry::bundle::sha256_hex(
            &std::fs::read(reg.bundle_path(NAME, "1.1.0")).unwrap()
        )
    );
    assert_eq!(reg.names().unwrap(), [NAME]);
}

#[test]
fn republishing_the_same_files_is_a_no_op_and_different_files_are_refused() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0"]);
    let again = publish(&reg, &key, &bundle(&key, "1.0.0", b"wasm 1.0.0")).unwrap();
    assert!(!again.added);
    assert_eq!(again.name, NAME);
    assert_eq!(reg.read_index(NAME).unwrap().unwrap().signed.version, 1);
    let err = publish(&reg, &key, &bundle(&key, "1.0.0", b"other wasm"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("disability-fund-arrears@1.0.0 is already in registry"),
        "{err}"
    );
    assert!(err.contains("model.wasm differ"), "{err}");
}

#[test]
fn another_unit_cannot_publish_or_yank_a_model_it_did_not_publish() {
    let key = UnitKey::generate().unwrap();
    let other = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0"]);
    let err = publish(&reg, &other, &bundle(&other, "2.0.0", b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("only the publisher can publish a version of"),
        "{err}"
    );
    // Nor can a registry keeper publish a bundle it did not sign.
    let err = publish(&reg, &other, &bundle(&key, "2.0.0", b"x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("only the publisher can publish"), "{err}");
    let err = yank(&reg, &other, "1.0.0", None).unwrap_err().to_string();
    assert!(err.contains("only the publisher can yank"), "{err}");
    let err = reg
        .resign(NAME, &change(&other, None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("only the publisher can sign the index"),
        "{err}"
    );
    let index = reg.read_index(NAME).unwrap().unwrap().signed;
    assert!(index.versions[0].yanked().is_none());
    assert_eq!(index.version, 1);
}

#[test]
fn a_tampered_bundle_is_not_published_and_nothing_is_written() {
    let key = UnitKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reg = DirRegistry::new(dir.path());
    let mut bytes = bundle(&key, "1.0.0", b"the wasm bytes");
    let at = support::data_offset(&bytes, "model.wasm");
    bytes[at + 3] ^= 0x20;
    let err = publish(&reg, &key, &bytes).unwrap_err().to_string();
    assert!(
        err.contains("digest mismatch") && err.contains("model.wasm"),
        "{err}"
    );
    assert_eq!(reg.read_index(NAME).unwrap(), None);
    assert!(!dir.path().join(".lock").exists());
}

#[test]
fn fetch_picks_the_highest_matching_version_that_is_not_yanked() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0", "1.2.0", "1.10.0", "2.0.0"]);
    let source = Source::Dir(reg.clone());
    assert_eq!(
        fetch_trusting(&source, "", &key).unwrap().entry.version,
        "2.0.0"
    );
    assert_eq!(
        fetch_trusting(&source, "^1", &key).unwrap().entry.version,
        "1.10.0"
    );
    assert!(yank(&reg, &key, "1.10.0", Some("wrong wage cap")).unwrap());
    assert!(!yank(&reg, &key, "1.10.0", None).unwrap(), "already yanked");
    let f = fetch_trusting(&source, "^1", &key).unwrap();
    assert_eq!(f.entry.version, "1.2.0");
    assert_eq!(f.bundle.model_wasm(), b"wasm 1.2.0");
    let err = fetch_trusting(&source, "1.10.0", &key).unwrap_err();
    assert!(matches!(err, Error::Yanked { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("1.10.0 is yanked by 阿克苏地区人民检察院 (wrong wage cap)"),
        "{err}"
    );
    let err = fetch_trusting(&source, "^3", &key).unwrap_err().to_string();
    assert!(err.contains("no version of disability-fund-arrears matches `^3`; available: 2.0.0, 1.10.0 (yanked), 1.2.0, 1.0.0"), "{err}");
}

#[test]
fn fetch_names_an_unknown_model_and_lists_what_there_is() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0"]);
    let source = Source::Dir(reg);
    let err = fetch_trusting_anyone(&source, "drunk-driving")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no model `drunk-driving`; it has: disability-fund-arrears"),
        "{err}"
    );
}

#[test]
fn a_bundle_swapped_in_the_registry_folder_is_refused_by_what_changed() {
    let key = UnitKey::generate().unwrap();
    let stranger = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0"]);
    let source = Source::Dir(reg.clone());
    let path = reg.bundle_path(NAME, "1.0.0");
    let good = std::fs::read(&path).unwrap();

    // One byte of the wasm, in place.
    let mut t = good.clone();
    t[support::data_offset(&good, "model.wasm")] ^= 1;
    std::fs::write(&path, &t).unwrap();
    let err = fetch_trusting(&source, "", &key).unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { file, .. } if *file == "model.wasm"),
        "{err}"
    );

    // The same version signed by a key nobody trusts.
    std::fs::write(&path, bundle(&stranger, "1.0.0", b"wasm 1.0.0")).unwrap();
    let err = fetch_trusting(&source, "", &key).unwrap_err();
    assert!(matches!(err, Error::UnknownKey { .. }), "{err}");

    // Signed by a trusted key, but not the publisher the index names.
    let err = fetch_trusting_anyone(&source, NAME)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the registry says it was published by"),
        "{err}"
    );

    // A valid bundle of the publisher, but not the one the index lists.
    std::fs::write(&path, bundle(&key, "1.0.0", b"another wasm")).unwrap();
    let err = fetch_trusting(&source, "", &key).unwrap_err().to_string();
    assert!(
        err.contains("model.wasm has sha256") && err.contains("the index of"),
        "{err}"
    );

    std::fs::write(&path, &good).unwrap();
    fetch_trusting(&source, "", &key).unwrap();
}

#[test]
fn a_single_bundle_file_is_a_source_too() {
    let key = UnitKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.jiandu");
    std::fs::write(&file, bundle(&key, "1.3.0", b"w")).unwrap();
    let source = Source::parse(file.to_str().unwrap()).unwrap();
    assert!(matches!(source, Source::File(_)));
    assert_eq!(
        fetch_trusting(&source, "^1", &key).unwrap().entry.version,
        "1.3.0"
    );
    let err = fetch_trusting(&source, "^2", &key).unwrap_err().to_string();
    assert!(err.contains("available: 1.3.0"), "{err}");
}

#[test]
fn search_matches_name_title_description_and_publisher() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0"]);
    let indexes = Source::Dir(reg).indexes().unwrap();
    for text in ["", "fund", "残保金", "PAID LESS", "阿克苏地区"] {
        assert_eq!(search(&indexes, text).len(), 1, "{text}");
    }
    assert!(search(&indexes, "drunk").is_empty());
}

fn serve(root: &Path) -> String {
    let server = Server::bind(DirRegistry::new(root), "127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.local_addr());
    std::thread::spawn(move || server.serve());
    url
}

#[test]
fn a_served_registry_reads_like_its_folder_and_is_verified_the_same() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0", "1.1.0"]);
    let url = serve(reg.root());
    let source = Source::parse(&url).unwrap();
    assert!(matches!(source, Source::Http(_)));
    assert_eq!(source.names().unwrap(), [NAME]);
    let f = fetch_trusting(&source, "", &key).unwrap();
    assert_eq!(f.entry.version, "1.1.0");
    assert_eq!(f.bundle.model_wasm(), b"wasm 1.1.0");
    let err = fetch_trusting_anyone(&source, "drunk-driving")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("registry {url} has no model `drunk-driving`")),
        "{err}"
    );

    let path = reg.bundle_path(NAME, "1.1.0");
    let mut t = std::fs::read(&path).unwrap();
    let at = support::data_offset(&t, "model.wasm");
    t[at] ^= 1;
    std::fs::write(&path, &t).unwrap();
    let err = fetch_trusting(&source, "", &key).unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { file, .. } if *file == "model.wasm"),
        "{err}"
    );
}

#[test]
fn a_served_registry_answers_nothing_but_get_of_its_files() {
    use std::io::{Read, Write};
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0"]);
    let url = serve(reg.root());
    let addr = url.trim_start_matches("http://");
    // The status code of the reply to `request` (the HTTP version of the
    // reply is the server's to choose).
    let ask = |request: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out.lines().next().unwrap_or("").to_string();
        status.split(' ').nth(1).unwrap_or("").to_string()
    };
    assert_eq!(ask("PUT /index/x.json HTTP/1.0\r\n\r\n"), "405");
    assert_eq!(
        ask("DELETE /bundles/disability-fund-arrears-1.0.0.jiandu HTTP/1.0\r\n\r\n"),
        "405"
    );
    assert_eq!(ask("POST /nothing/here HTTP/1.0\r\n\r\n"), "405");
    assert_eq!(ask("GET /../../etc/passwd HTTP/1.0\r\n\r\n"), "404");
    assert_eq!(
        ask("GET /bundles/..%2F..%2Fregistry.json HTTP/1.0\r\n\r\n"),
        "404"
    );
    assert_eq!(
        ask("GET /bundles/disability-fund-arrears-1.0.0.jiandu HTTP/1.0\r\n\r\n"),
        "200"
    );
    assert_eq!(
        ask("HEAD /index/disability-fund-arrears.json HTTP/1.0\r\n\r\n"),
        "200"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_in_the_registry_folder_is_neither_read_nor_served() {
    let key = UnitKey::generate().unwrap();
    let (d, reg) = registry_with(&key, &["1.0.0"]);
    let path = reg.bundle_path(NAME, "1.0.0");
    let outside = d.path().join("outside.jiandu");
    std::fs::rename(&path, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    let err = fetch_trusting(&Source::Dir(reg.clone()), "", &key)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a symlink"), "{err}");
    let url = serve(reg.root());
    let err = fetch_trusting(&Source::parse(&url).unwrap(), "", &key)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_withdrawn_version_comes_back_only_when_the_publisher_unyanks_it() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0", "1.1.0"]);
    let source = Source::Dir(reg.clone());
    yank(&reg, &key, "1.1.0", Some("wrong wage cap")).unwrap();
    assert_eq!(
        fetch_trusting(&source, "", &key).unwrap().entry.version,
        "1.0.0"
    );
    let v = semver::Version::parse("1.1.0").unwrap();
    let signed = reg
        .set_yanked(
            NAME,
            &v,
            YankAction::Unyank,
            &change(&key, Some("the cap was right")),
        )
        .unwrap()
        .unwrap();
    assert_eq!(signed.signed.version, 4);
    let f = fetch_trusting(&source, "", &key).unwrap();
    assert_eq!(f.entry.version, "1.1.0");
    let yanks = &f.entry.yanks;
    assert_eq!(yanks.len(), 2, "the yank and the un-yank are both kept");
    assert_eq!(yanks[1].reason.as_deref(), Some("the cap was right"));
    assert_eq!(f.index.unwrap().signed.version, 4);
}

#[test]
fn an_older_copy_of_the_index_is_refused_as_a_rollback_naming_both_versions() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0", "1.1.0"]);
    let source = Source::Dir(reg.clone());
    let path = reg.index_path(NAME);
    let before_yank = std::fs::read(&path).unwrap();
    yank(&reg, &key, "1.1.0", Some("wrong wage cap")).unwrap();
    let seen = fetch_trusting(&source, "", &key)
        .unwrap()
        .index
        .unwrap()
        .state();
    assert_eq!(seen.version, 3);

    // Someone puts back the index from before the yank: validly signed,
    // current, and older than what this importer has seen.
    std::fs::write(&path, &before_yank).unwrap();
    let err = fetch_seen(&source, "", &key, Some(&seen), NOW).unwrap_err();
    assert!(matches!(err, Error::IndexRollback { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("is index version 2, but index version 3 was seen"),
        "{text}"
    );
    // An importer that never saw version 3 cannot know better.
    assert_eq!(
        fetch_trusting(&source, "", &key).unwrap().entry.version,
        "1.1.0"
    );

    // The old index moved to another registry folder still names its own
    // registry, inside what is signed, and is refused the same.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = DirRegistry::new(elsewhere.path());
    let other_key = UnitKey::generate().unwrap();
    publish(
        &other,
        &other_key,
        &pack(
            toml("1.0.0").replace(NAME, "other-model").as_bytes(),
            b"w",
            None,
            &Signer {
                key: &other_key,
                unit: "B",
                code: "b",
            },
            PUBLISHED,
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(other.index_path(NAME).parent().unwrap()).unwrap();
    std::fs::write(other.index_path(NAME), &before_yank).unwrap();
    std::fs::create_dir_all(other.bundle_path(NAME, "1.1.0").parent().unwrap()).unwrap();
    std::fs::copy(
        reg.bundle_path(NAME, "1.1.0"),
        other.bundle_path(NAME, "1.1.0"),
    )
    .unwrap();
    assert_ne!(other.id().unwrap(), reg.id().unwrap());
    let err = fetch_seen(&Source::Dir(other.clone()), "", &key, Some(&seen), NOW).unwrap_err();
    assert!(matches!(err, Error::IndexRollback { .. }), "{err}");
    // And its publisher cannot publish into the copy.
    let err = publish(&other, &key, &bundle(&key, "1.2.0", b"w"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("was copied here from another registry"),
        "{err}"
    );
}

#[test]
fn the_same_index_version_with_other_content_is_refused() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0"]);
    let source = Source::Dir(reg.clone());
    let seen = fetch_trusting(&source, "", &key)
        .unwrap()
        .index
        .unwrap()
        .state();
    // The publisher's key signs another document under the same version.
    let mut doc = reg.read_index(NAME).unwrap().unwrap().signed;
    doc.version -= 1;
    doc.versions[0].title = "another title".into();
    let forked = doc.sign(&key, PUBLISHED, 365).unwrap();
    std::fs::write(reg.index_path(NAME), forked.to_json()).unwrap();
    let err = fetch_seen(&source, "", &key, Some(&seen), NOW).unwrap_err();
    assert!(matches!(err, Error::IndexFork { .. }), "{err}");
}

#[test]
fn an_expired_index_is_refused_naming_its_expiry_until_the_publisher_signs_it_again() {
    let key = UnitKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reg = DirRegistry::new(dir.path());
    reg.publish(&bundle(&key, "1.0.0", b"w"), "bundle", &key, PUBLISHED, 30)
        .unwrap();
    let source = Source::Dir(reg.clone());
    fetch_seen(&source, "", &key, None, "2024-04-01T09:59:59+08:00").unwrap();
    let err = fetch_seen(&source, "", &key, None, "2024-04-01T10:00:00+08:00").unwrap_err();
    assert!(matches!(err, Error::IndexExpired { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("(index version 1) expired at 2024-04-01T10:00:00+08:00"),
        "{text}"
    );
    assert!(text.contains("jiandu registry sign"), "{text}");
    let signed = reg
        .resign(
            NAME,
            &Change {
                key: &key,
                now: "2024-05-01T10:00:00+08:00",
                reason: None,
                valid_days: 30,
            },
        )
        .unwrap();
    assert_eq!(signed.signed.version, 2);
    assert_eq!(signed.signed.expires, "2024-05-31T10:00:00+08:00");
    fetch_seen(&source, "", &key, None, "2024-05-20T10:00:00+08:00").unwrap();
}

/// The registry's index file as JSON, edited by `edit`, written back.
fn edit_index(reg: &DirRegistry, edit: impl Fn(&mut serde_json::Value)) {
    let path = reg.index_path(NAME);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn a_yank_removed_from_or_written_into_the_index_file_is_refused() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0", "1.1.0"]);
    let source = Source::Dir(reg.clone());
    yank(&reg, &key, "1.1.0", Some("wrong wage cap")).unwrap();
    let good = std::fs::read(reg.index_path(NAME)).unwrap();

    // The yank deleted: 1.1.0 does not become installable, the whole
    // index is refused.
    edit_index(&reg, |v| {
        v["signed"]["versions"][1]
            .as_object_mut()
            .unwrap()
            .remove("yanks");
    });
    let err = fetch_trusting(&source, "", &key).unwrap_err();
    assert!(matches!(err, Error::BadIndexSignature { .. }), "{err}");
    assert!(err.to_string().contains("nothing in it is used"), "{err}");

    // A yank nobody signed, added by hand.
    std::fs::write(reg.index_path(NAME), &good).unwrap();
    edit_index(&reg, |v| {
        v["signed"]["versions"][0]["yanks"] = serde_json::json!([
            {"action": "yank", "reason": "forged", "at": NOW, "index_version": 4}
        ]);
    });
    let err = fetch_trusting(&source, "", &key).unwrap_err();
    assert!(matches!(err, Error::BadIndexSignature { .. }), "{err}");

    // The same, signed by another key in the publisher's name.
    let forger = UnitKey::generate().unwrap();
    let mut doc = SignedIndex::parse(&good, NAME, "good").unwrap().signed;
    let v = semver::Version::parse("1.0.0").unwrap();
    doc.set_yanked(&v, YankAction::Yank, Some("forged"), NOW)
        .unwrap();
    let forged_publisher = doc.clone();
    assert!(doc.clone().sign(&forger, PUBLISHED, 365).is_err());
    // ... or with the forger's key named as publisher: not trusted.
    let mut as_forger = forged_publisher;
    as_forger.publisher.key = forger.public().to_hex();
    as_forger.publisher.fingerprint = forger.public().fingerprint();
    let signed = as_forger.sign(&forger, PUBLISHED, 365).unwrap();
    std::fs::write(reg.index_path(NAME), signed.to_json()).unwrap();
    let err = fetch_trusting(&source, "", &key).unwrap_err();
    assert!(matches!(err, Error::UnknownIndexKey { .. }), "{err}");
    assert!(
        err.to_string().contains(&forger.public().fingerprint()),
        "{err}"
    );

    std::fs::write(reg.index_path(NAME), &good).unwrap();
    assert_eq!(
        fetch_trusting(&source, "", &key).unwrap().entry.version,
        "1.0.0"
    );
}
