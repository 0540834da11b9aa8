//! Test helpers: a tar writer and reader written from the format, not with
//! the `tar` crate, so that bundles can be built the way an attacker would
//! (`..` paths, links, duplicates) and the reader is checked against an
//! independent writer.
#![allow(dead_code)]

/// One archive entry: `kind` is the tar type flag (`b'0'` file, `b'1'`
/// hard link, `b'2'` symlink, `b'5'` directory).
pub struct Raw<'a> {
    pub name: &'a str,
    pub kind: u8,
    pub link: &'a str,
    pub data: &'a [u8],
}

impl<'a> Raw<'a> {
    pub fn file(name: &'a str, data: &'a [u8]) -> Raw<'a> {
        Raw {
            name,
            kind: b'0',
            link: "",
            data,
        }
    }
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{:0width$o}\0", value, width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

/// A ustar archive of `entries`.
pub fn write_tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = [0u8; 512];
        h[..e.name.len()].copy_from_slice(e.name.as_bytes());
        octal(&mut h[100..108], 0o644);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], e.data.len() as u64);
        octal(&mut h[136..148], 0);
        h[156] = e.kind;
        h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        // Seven octal digits and a NUL, as `jiandu model pack` writes it.
        h[148..156].copy_from_slice(format!("{sum:07o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The regular files of a ustar archive, in order: (name, data).
pub fn read_tar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at..at + 512].iter().any(|b| *b != 0) {
        let h = &bytes[at..at + 512];
        let name_end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8(h[..name_end].to_vec()).unwrap();
        let size_text = std::str::from_utf8(&h[124..136])
            .unwrap()
            .trim_matches(['\0', ' ']);
        let size = u64::from_str_radix(size_text, 8).unwrap() as usize;
        out.push((name, bytes[at + 512..at + 512 + size].to_vec()));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// `entries` with `name`'s data replaced.
pub fn replace(entries: &[(String, Vec<u8>)], name: &str, data: &[u8]) -> Vec<u8> {
    let raws: Vec<Raw> = entries
        .iter()
        .map(|(n, d)| Raw::file(n, if n == name { data } else { d }))
        .collect();
    write_tar(&raws)
}

/// Offset of the header of entry `name` in the archive.
pub fn header_offset(bytes: &[u8], name: &str) -> usize {
    data_offset(bytes, name) - 512
}

/// The archive with `value` written at `offset` of `name`'s header and the
/// header's checksum recomputed, so that a tar reader still accepts it.
pub fn with_header_field(bytes: &[u8], name: &str, offset: usize, value: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = header_offset(bytes, name);
    out[at + offset..at + offset + value.len()].copy_from_slice(value);
    let h = &mut out[at..at + 512];
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:07o}\0").as_bytes());
    out
}

/// Offset of the data of entry `name` in the archive.
pub fn data_offset(bytes: &[u8], name: &str) -> usize {
    let mut at = 0;
    loop {
        let h = &bytes[at..at + 512];
        assert!(h.iter().any(|b| *b != 0), "no entry {name}");
        let name_end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let size_text = std::str::from_utf8(&h[124..136])
            .unwrap()
            .trim_matches(['\0', ' ']);
        let size = usize::from_str_radix(size_text, 8).unwrap();
        if &h[..name_end] == name.as_bytes() {
            return at + 512;
        }
        at += 512 + size.div_ceil(512) * 512;
    }
}
