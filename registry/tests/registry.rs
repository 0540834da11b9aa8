//! Directory registries and fetching from them (and from their HTTP front):
//! publish, search, yank by the publisher only, semver resolution, and every
//! check `fetch` makes before a host sees a bundle.

mod support;

use jiandu_registry::bundle::{pack, Signer};
use jiandu_registry::dir::{DirRegistry, Published};
use jiandu_registry::http::Server;
use jiandu_registry::keys::{PublicKey, UnitKey};
use jiandu_registry::source::{fetch, search, Fetched, Source};
use jiandu_registry::{Error, Result};
use std::path::Path;

const NAME: &str = "disability-fund-arrears";

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
        &signer,
        "2024-03-01T09:00:00.000+08:00",
    )
    .unwrap()
}

fn publish(reg: &DirRegistry, bytes: &[u8]) -> Result<Published> {
    reg.publish(bytes, "bundle", "2024-03-02T10:00:00.000+08:00")
}

fn req(s: &str) -> semver::VersionReq {
    jiandu_registry::index::parse_spec(&format!("{NAME}@{s}"))
        .unwrap()
        .1
}

fn fetch_trusting(source: &Source, spec: &str, key: &UnitKey) -> Result<Fetched> {
    let public: PublicKey = key.public();
    fetch(source, NAME, &req(spec), &|k| *k == public)
}

fn registry_with(key: &UnitKey, versions: &[&str]) -> (tempfile::TempDir, DirRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let reg = DirRegistry::new(dir.path().join("registry"));
    for v in versions {
        publish(&reg, &bundle(key, v, format!("wasm {v}").as_bytes())).unwrap();
    }
    (dir, reg)
}

#[test]
fn published_versions_are_listed_with_digests_and_publisher() {
    let key = UnitKey::generate().unwrap();
    let (_d, reg) = registry_with(&key, &["1.0.0", "1.1.0"]);
    assert!(reg.index_path(NAME).is_file());
    assert!(reg.bundle_path(NAME, "1.1.0").is_file());
    let index = reg.read_index(NAME).unwrap().unwrap();
    assert_eq!(index.available(), ["1.1.0", "1.0.0"]);
    let e = &index.versions[1];
    assert_eq!(e.publisher.fingerprint, key.public().fingerprint());
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
    let again = publish(&reg, &bundle(&key, "1.0.0", b"wasm 1.0.0")).unwrap();
    assert!(!again.added);
    assert_eq!(again.name, NAME);
    let err = publish(&reg, &bundle(&key, "1.0.0", b"other wasm"))
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
    let err = publish(&reg, &bundle(&other, "2.0.0", b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("only the publisher can publish a version of"),
        "{err}"
    );
    let v = semver::Version::parse("1.0.0").unwrap();
    let err = reg
        .yank(NAME, &v, &other, None, "now")
        .unwrap_err()
        .to_string();
    assert!(err.contains("only the publisher can yank"), "{err}");
    assert!(reg.read_index(NAME).unwrap().unwrap().versions[0]
        .yanked
        .is_none());
}

#[test]
fn a_tampered_bundle_is_not_published_and_nothing_is_written() {
    let key = UnitKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reg = DirRegistry::new(dir.path());
    let mut bytes = bundle(&key, "1.0.0", b"the wasm bytes");
    let at = support::data_offset(&bytes, "model.wasm");
    bytes[at + 3] ^= 0x20;
    let err = publish(&reg, &bytes).unwrap_err().to_string();
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
    let v = semver::Version::parse("1.10.0").unwrap();
    assert!(reg
        .yank(NAME, &v, &key, Some("wrong wage cap"), "now")
        .unwrap());
    assert!(reg
        .read_index(NAME)
        .unwrap()
        .unwrap()
        .get(&v)
        .unwrap()
        .yank_is_signed(NAME));
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
    let err = fetch(&source, "drunk-driving", &semver::VersionReq::STAR, &|_| {
        true
    })
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
    let err = fetch(&source, NAME, &semver::VersionReq::STAR, &|_| true)
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
    let err = fetch(&source, "drunk-driving", &semver::VersionReq::STAR, &|_| {
        true
    })
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
    let ask = |request: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.lines().next().unwrap_or("").to_string()
    };
    assert_eq!(
        ask("PUT /index/x.json HTTP/1.0\r\n\r\n"),
        "HTTP/1.0 405 Method Not Allowed"
    );
    assert_eq!(
        ask("DELETE /bundles/disability-fund-arrears-1.0.0.jiandu HTTP/1.0\r\n\r\n"),
        "HTTP/1.0 405 Method Not Allowed"
    );
    assert_eq!(
        ask("GET /../../etc/passwd HTTP/1.0\r\n\r\n"),
        "HTTP/1.0 404 Not Found"
    );
    assert_eq!(
        ask("GET /bundles/disability-fund-arrears-1.0.0.jiandu HTTP/1.0\r\n\r\n"),
        "HTTP/1.0 200 OK"
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
