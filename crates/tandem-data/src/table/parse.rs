//! Reading cells: numbers, labels and split names, each checked strictly.
//!
//! Every function returns the reason in words (without file, line or column, which the caller
//! adds), so one message format serves every cell.
use super::options::TableTaskKind;
use crate::Label;

/// The split a row belongs to, from the split column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowSplit {
    /// Training rows (`train`).
    Train,
    /// Validation rows (`val`).
    Val,
    /// Test rows (`test`).
    Test,
}

/// A number that is finite and representable as a finite `f32`. Rust's `f64` parser accepts
/// `inf`, `nan` and `1e400` (= infinity); all are rejected here.
pub(crate) fn number(cell: &str) -> Result<f64, String> {
    let value: f64 = cell
        .parse()
        .map_err(|_| format!("`{cell}` is not a number"))?;
    if !value.is_finite() {
        return Err(format!("`{cell}` is not a finite number"));
    }
    if value.abs() > f64::from(f32::MAX) {
        return Err(format!("`{cell}` is outside the range of f32"));
    }
    Ok(value)
}

/// A feature cell: a finite number; features cannot be missing.
pub(crate) fn feature(cell: &str) -> Result<f64, String> {
    if cell.is_empty() {
        return Err("empty feature cell: features cannot be missing".into());
    }
    number(cell)
}

/// A class index `0..classes`, written as an integer.
pub(crate) fn class(cell: &str, classes: usize) -> Result<Label, String> {
    let expected = format!(
        "expected an integer from 0 to {} (classes = {classes})",
        classes - 1
    );
    let Ok(value) = cell.parse::<i64>() else {
        return Err(format!("`{cell}` is not a class index: {expected}"));
    };
    match u32::try_from(value) {
        Ok(v) if (v as usize) < classes => Ok(Label::Class(v)),
        _ => Err(format!("class {value} is out of range: {expected}")),
    }
}

/// A binary label: `0` or `1`.
pub(crate) fn binary(cell: &str) -> Result<Label, String> {
    match cell {
        "0" => Ok(Label::Binary(false)),
        "1" => Ok(Label::Binary(true)),
        _ => Err(format!("`{cell}` is not a binary label: expected 0 or 1")),
    }
}

/// A task's label from its cells (in the task's column order). All cells empty → `Missing`;
/// some empty → an error at the first empty one. On error: the index of the cell at fault and
/// the reason. Points are returned as given (the caller normalises them to the image).
pub(crate) fn label(
    kind: TableTaskKind,
    task: &str,
    cells: &[&str],
) -> Result<Label, (usize, String)> {
    let empty = cells.iter().filter(|c| c.is_empty()).count();
    if empty == cells.len() {
        return Ok(Label::Missing);
    }
    if empty > 0 {
        let at = cells.iter().position(|c| c.is_empty()).unwrap_or(0);
        return Err((
            at,
            format!(
                "empty cell, while other columns of task `{task}` have values: a label of \
                 several columns is given whole or left empty whole"
            ),
        ));
    }
    match kind {
        TableTaskKind::Class { classes } => class(cells[0], classes).map_err(|e| (0, e)),
        TableTaskKind::Binary => binary(cells[0]).map_err(|e| (0, e)),
        TableTaskKind::Regression | TableTaskKind::Points => {
            let mut values = Vec::with_capacity(cells.len());
            for (i, cell) in cells.iter().enumerate() {
                values.push(number(cell).map_err(|e| (i, e))? as f32);
            }
            Ok(match kind {
                TableTaskKind::Points => Label::Points(values),
                _ => Label::Values(values),
            })
        }
    }
}

/// A split cell: `train`, `val` or `test` (any letter case).
pub(crate) fn split(cell: &str) -> Result<RowSplit, String> {
    match cell.to_ascii_lowercase().as_str() {
        "train" => Ok(RowSplit::Train),
        "val" => Ok(RowSplit::Val),
        "test" => Ok(RowSplit::Test),
        "" => Err("empty split cell: expected train, val or test".into()),
        _ => Err(format!(
            "`{cell}` is not a split: expected train, val or test"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_must_be_finite_f32() {
        assert_eq!(number("1.5"), Ok(1.5));
        assert_eq!(number("-2e3"), Ok(-2000.0));
        for bad in ["inf", "-inf", "nan", "NaN", "infinity", "1e400"] {
            assert!(
                number(bad).is_err_and(|e| e.contains("not a finite")),
                "{bad}"
            );
        }
        assert!(number("1e39").is_err_and(|e| e.contains("f32")));
        assert!(number("seven").is_err_and(|e| e.contains("not a number")));
        assert!(feature("").is_err_and(|e| e.contains("empty")));
    }

    #[test]
    fn classes_and_binaries_are_strict() {
        assert_eq!(class("2", 3), Ok(Label::Class(2)));
        for bad in ["3", "-1", "1.5", "x", "1.0"] {
            assert!(class(bad, 3).is_err(), "{bad}");
        }
        assert_eq!(binary("1"), Ok(Label::Binary(true)));
        for bad in ["2", "true", "0.0", "-0"] {
            assert!(binary(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_are_whole_or_missing() {
        let k = TableTaskKind::Regression;
        assert_eq!(label(k, "t", &["", ""]), Ok(Label::Missing));
        assert_eq!(
            label(k, "t", &["1", "2"]),
            Ok(Label::Values(vec![1.0, 2.0]))
        );
        assert_eq!(label(k, "t", &["1", ""]).map_err(|e| e.0), Err(1));
        assert_eq!(label(k, "t", &["1", "x"]).map_err(|e| e.0), Err(1));
        assert_eq!(
            label(TableTaskKind::Points, "t", &["1", "2"]),
            Ok(Label::Points(vec![1.0, 2.0]))
        );
    }

    #[test]
    fn split_names() {
        assert_eq!(split("Train"), Ok(RowSplit::Train));
        assert_eq!(split("val"), Ok(RowSplit::Val));
        assert_eq!(split("TEST"), Ok(RowSplit::Test));
        assert!(split("training").is_err());
        assert!(split("").is_err());
    }
}
