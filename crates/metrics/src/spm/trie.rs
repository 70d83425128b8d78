//! A byte trie over vocabulary pieces, for the prefix walks of unigram segmentation and
//! of the user-defined-symbol matcher.

use std::collections::HashMap;

/// Maps byte strings to ids; walks report every stored key that prefixes an input.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trie {
    /// Child of `(node, byte)`; node 0 is the root.
    edges: HashMap<(u32, u8), u32>,
    /// Id stored at each node, if a key ends there.
    values: Vec<Option<u32>>,
}

impl Trie {
    /// A trie holding `keys` with their ids (a later duplicate replaces an earlier one).
    pub(crate) fn new<'a>(keys: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let mut trie = Self {
            edges: HashMap::new(),
            values: vec![None],
        };
        for (key, id) in keys {
            let mut node = 0u32;
            for &byte in key.as_bytes() {
                let next = trie.values.len() as u32;
                node = *trie.edges.entry((node, byte)).or_insert_with(|| next);
                if node == next {
                    trie.values.push(None);
                }
            }
            trie.values[node as usize] = Some(id);
        }
        trie
    }

    /// The `(length, id)` of every key that is a prefix of `input`, shortest first.
    pub(crate) fn prefixes<'a>(
        &'a self,
        input: &'a [u8],
    ) -> impl Iterator<Item = (usize, u32)> + 'a {
        let mut node = 0u32;
        input
            .iter()
            .map_while(move |&byte| {
                node = *self.edges.get(&(node, byte))?;
                Some(self.values[node as usize])
            })
            .enumerate()
            .filter_map(|(i, id)| Some((i + 1, id?)))
    }

    /// The longest key that is a prefix of `input`, as `(length, id)`.
    pub(crate) fn longest_prefix(&self, input: &[u8]) -> Option<(usize, u32)> {
        self.prefixes(input).last()
    }
}
