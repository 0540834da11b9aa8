//! Pseudonyms in leads turned back into what a person may see: masked, or
//! in clear on request. Clear values come from the `#clear` runs stored
//! beside every dataset version (see [`super::VersionReader::resolve_pseudonym`]).

use crate::mask::{mask, PersonalKind};
use crate::pseudonym::{parse_clear_entry, tokens};
use crate::{Result, Store};
use std::collections::HashMap;

/// How a person sees personal values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reveal {
    /// Masked for human eyes (`110105***********X`).
    Masked,
    /// In clear: only on request, and on the record.
    Clear,
}

/// Turns pseudonyms in lead text back into what a person may see. Clear
/// values are looked up in the maps stored beside every dataset version
/// (see [`super::VersionReader::resolve_pseudonym`]), once per
/// pseudonym.
pub struct Resolver<'s> {
    store: &'s Store,
    readers: Option<Vec<super::VersionReader>>,
    known: HashMap<String, Option<(PersonalKind, String)>>,
    /// Pseudonyms shown in clear so far.
    pub revealed: u64,
}

impl<'s> Resolver<'s> {
    pub fn new(store: &'s Store) -> Resolver<'s> {
        Resolver {
            store,
            readers: None,
            known: HashMap::new(),
            revealed: 0,
        }
    }

    /// The kind and clear value behind `pseudonym`, if this store made it.
    pub fn lookup(&mut self, pseudonym: &str) -> Result<Option<(PersonalKind, String)>> {
        if let Some(found) = self.known.get(pseudonym) {
            return Ok(found.clone());
        }
        if self.readers.is_none() {
            self.readers = Some(super::all_version_readers(self.store)?);
        }
        let mut found = None;
        for reader in self.readers.iter().flatten() {
            if let Some(entry) = reader.resolve_pseudonym(pseudonym)? {
                found = parse_clear_entry(&entry).map(|(k, v)| (k, v.to_string()));
                if found.is_some() {
                    break;
                }
            }
        }
        self.known.insert(pseudonym.to_string(), found.clone());
        Ok(found)
    }

    /// `text` with every pseudonym in it replaced as `reveal` says; a
    /// pseudonym this store cannot resolve stays as it is.
    pub fn display(&mut self, text: &str, reveal: Reveal) -> Result<String> {
        let tokens = tokens(text);
        if tokens.is_empty() {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for t in tokens {
            out.push_str(&text[last..t.start]);
            match self.lookup(&text[t.clone()])? {
                Some((kind, clear)) => match reveal {
                    Reveal::Masked => out.push_str(&mask(kind, &clear)),
                    Reveal::Clear => {
                        self.revealed += 1;
                        out.push_str(&clear);
                    }
                },
                None => out.push_str(&text[t.clone()]),
            }
            last = t.end;
        }
        out.push_str(&text[last..]);
        Ok(out)
    }

    /// Whether `text` holds a pseudonym this store made.
    pub fn has_personal(&mut self, text: &str) -> Result<bool> {
        for t in tokens(text) {
            if self.lookup(&text[t])?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
