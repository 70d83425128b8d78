//! MeCab's connection-cost matrix (`matrix.bin`): `u16` left size, `u16` right size,
//! then `left × right` little-endian `i16` costs. The cost between a left node and a
//! right node is `costs[left.right_id + left_size * right.left_id]`, as in MeCab's
//! `Connector::cost`.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The connection-cost matrix.
pub(crate) struct Matrix {
    left_size: usize,
    right_size: usize,
    costs: Vec<i16>,
}

impl Matrix {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read MeCab connection matrix {}", path.display()))?;
        Self::parse(path, &bytes)
    }

    /// Checks the bytes of a `matrix.bin` that `path` names in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 4 {
            bail!(
                "{}: {} bytes, too small for a MeCab matrix.bin (4-byte header expected)",
                path.display(),
                bytes.len()
            );
        }
        let left_size = u16::from_le_bytes([bytes[0], bytes[1]]) as usize;
        let right_size = u16::from_le_bytes([bytes[2], bytes[3]]) as usize;
        let want = 4 + 2 * left_size * right_size;
        if bytes.len() != want {
            bail!(
                "{}: a {left_size}×{right_size} matrix needs {want} bytes, the file has {}",
                path.display(),
                bytes.len()
            );
        }
        let costs = bytes[4..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(Matrix {
            left_size,
            right_size,
            costs,
        })
    }

    /// (left size, right size): right context ids of left nodes must be below the
    /// first, left context ids of right nodes below the second.
    pub fn sizes(&self) -> (usize, usize) {
        (self.left_size, self.right_size)
    }

    /// Cost of connecting a node with right context id `right_id` to a following node
    /// with left context id `left_id` (both checked against [`Matrix::sizes`] at load).
    pub fn cost(&self, right_id: u16, left_id: u16) -> i32 {
        self.costs[right_id as usize + self.left_size * left_id as usize] as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_costs_in_mecab_order() {
        // 2×3 matrix with costs 0..6.
        let mut b = vec![2, 0, 3, 0];
        for c in 0i16..6 {
            b.extend(c.to_le_bytes());
        }
        let m = Matrix::parse(Path::new("m.bin"), &b).unwrap();
        assert_eq!(m.sizes(), (2, 3));
        assert_eq!(m.cost(1, 2), 5);
        assert_eq!(m.cost(0, 1), 2);
    }

    #[test]
    fn truncated_matrix_is_an_error() {
        let e = Matrix::parse(Path::new("m.bin"), &[2, 0, 3, 0, 1, 0])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("m.bin") && e.contains("needs 16 bytes"), "{e}");
    }
}
