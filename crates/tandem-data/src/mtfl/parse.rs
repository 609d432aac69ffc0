//! The MTFL annotation format (`training.txt`, `testing.txt`).
//!
//! One face per line, fields separated by whitespace:
//!
//! ```text
//! path x1 x2 x3 x4 x5 y1 y2 y3 y4 y5 gender smile glasses pose
//! lfw_5590\Aaron_Eckhart_0001.jpg 107.25 147.75 126.25 106.25 140.75 108.75 113.25 143.75 158.75 162.75 1 2 2 3
//! ```
//!
//! The five points are, in order: left eye, right eye, nose, left mouth corner, right mouth
//! corner, in pixels of the image. The attribute codes (from the data set's `readme.txt`) are
//! 1-based; [`Attribute::class_of`] is the one place that maps them to 0-based class indices
//! (`class = code - 1`):
//!
//! | attribute | codes | classes |
//! | --- | --- | --- |
//! | gender  | 1 male, 2 female | 0, 1 |
//! | smile   | 1 smiling, 2 not smiling | 0, 1 |
//! | glasses | 1 wearing glasses, 2 not | 0, 1 |
//! | pose    | 1 left profile, 2 left, 3 frontal, 4 right, 5 right profile | 0..=4 |
//!
//! Quirks of real copies that are accepted: CRLF or LF line ends, a UTF-8 byte order mark,
//! leading and trailing spaces or tabs, blank or space-only lines (anywhere, including a
//! trailing line holding one space as the shipped `training.txt` has), `\` or `/` path
//! separators, and a missing final newline. Everything else is an error naming the file, the
//! 1-based line number and the field: `training.txt:5: field x1: ...`.
use crate::{DataError, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Number of whitespace-separated fields of an annotation line.
pub const FIELDS: usize = 15;

/// The names of the fields of a line, in order; used in error messages.
pub const FIELD_NAMES: [&str; FIELDS] = [
    "path", "x1", "x2", "x3", "x4", "x5", "y1", "y2", "y3", "y4", "y5", "gender", "smile",
    "glasses", "pose",
];

/// One of MTFL's four attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// 1 male, 2 female.
    Gender,
    /// 1 smiling, 2 not smiling.
    Smile,
    /// 1 wearing glasses, 2 not wearing glasses.
    Glasses,
    /// 1 left profile, 2 left, 3 frontal, 4 right, 5 right profile.
    Pose,
}

impl Attribute {
    /// All attributes, in file (and label) order.
    pub const ALL: [Attribute; 4] = [
        Attribute::Gender,
        Attribute::Smile,
        Attribute::Glasses,
        Attribute::Pose,
    ];

    /// The task name of this attribute (`gender`, `smile`, `glasses`, `pose`).
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Gender => "gender",
            Attribute::Smile => "smile",
            Attribute::Glasses => "glasses",
            Attribute::Pose => "pose",
        }
    }

    /// Number of classes (2, or 5 for the pose).
    pub fn classes(self) -> u32 {
        match self {
            Attribute::Pose => 5,
            _ => 2,
        }
    }

    /// The 0-based class of a 1-based MTFL code (`code - 1`), or `None` when the code is not
    /// one of the attribute's codes. This is the only place codes become classes.
    pub fn class_of(self, code: i64) -> Option<u32> {
        if (1..=i64::from(self.classes())).contains(&code) {
            u32::try_from(code - 1).ok()
        } else {
            None
        }
    }

    /// The MTFL code of a 0-based class (`class + 1`).
    pub fn code_of(self, class: u32) -> u32 {
        class + 1
    }

    fn codes_text(self) -> &'static str {
        match self {
            Attribute::Pose => "1, 2, 3, 4 or 5",
            _ => "1 or 2",
        }
    }
}

/// One parsed annotation line.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line number in the annotation file.
    pub line: usize,
    /// The image path relative to the data folder, with `/` separators, as a normalised
    /// relative path (no `.`, `..` or empty components).
    pub path: PathBuf,
    /// `[x1..x5, y1..y5]` in pixels of the original image.
    pub landmarks: [f32; 10],
    /// 0-based classes of gender, smile, glasses, pose (in [`Attribute::ALL`] order).
    pub attributes: [u32; 4],
}

impl Record {
    /// The 0-based class of one attribute.
    pub fn attribute(&self, attribute: Attribute) -> u32 {
        let i = match attribute {
            Attribute::Gender => 0,
            Attribute::Smile => 1,
            Attribute::Glasses => 2,
            Attribute::Pose => 3,
        };
        self.attributes[i]
    }
}

/// How strictly to parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Reject an image path that an earlier line already named.
    pub reject_duplicates: bool,
}

/// Reads and parses an annotation file. Errors name `file` by its file name.
pub fn read_annotations(path: &Path, options: ParseOptions) -> Result<Vec<Record>> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| path.to_path_buf());
    parse_annotations(&name, &bytes, options)
}

/// Parses the bytes of an annotation file; `file` is the name used in errors.
pub fn parse_annotations(file: &Path, bytes: &[u8], options: ParseOptions) -> Result<Vec<Record>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut records = Vec::new();
    let mut seen: HashMap<PathBuf, usize> = HashMap::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw).map_err(|e| {
            annotation(
                file,
                line,
                "path",
                format!(
                    "not UTF-8 text (invalid byte at column {})",
                    e.valid_up_to() + 1
                ),
            )
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let record = parse_line(file, line, text)?;
        if options.reject_duplicates {
            if let Some(first) = seen.insert(record.path.clone(), line) {
                return Err(annotation(
                    file,
                    line,
                    "path",
                    format!(
                        "duplicate image {} (first on line {first})",
                        record.path.display()
                    ),
                ));
            }
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: no annotation lines",
            file.display()
        )));
    }
    Ok(records)
}

/// Parses one non-blank line (`line` is its 1-based number, for errors).
pub fn parse_line(file: &Path, line: usize, text: &str) -> Result<Record> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() < FIELDS {
        let missing = FIELD_NAMES[fields.len()];
        return Err(annotation(
            file,
            line,
            missing,
            format!(
                "missing: the line has {} fields, expected {FIELDS} (path, x1..x5, y1..y5, gender, smile, glasses, pose)",
                fields.len()
            ),
        ));
    }
    if fields.len() > FIELDS {
        return Err(annotation(
            file,
            line,
            "extra",
            format!(
                "the line has {} fields, expected {FIELDS}: unexpected `{}` after pose",
                fields.len(),
                shorten(fields[FIELDS])
            ),
        ));
    }
    let path = parse_path(file, line, fields[0])?;
    let mut landmarks = [0.0f32; 10];
    for (k, value) in landmarks.iter_mut().enumerate() {
        let name = FIELD_NAMES[1 + k];
        let s = fields[1 + k];
        let v: f32 = s.parse().map_err(|_| {
            annotation(
                file,
                line,
                name,
                format!("`{}` is not a number", shorten(s)),
            )
        })?;
        if !v.is_finite() {
            return Err(annotation(
                file,
                line,
                name,
                format!("`{}` is not a finite number", shorten(s)),
            ));
        }
        *value = v;
    }
    let mut attributes = [0u32; 4];
    for (k, attribute) in Attribute::ALL.iter().enumerate() {
        let s = fields[11 + k];
        let class = s
            .parse::<i64>()
            .ok()
            .and_then(|code| attribute.class_of(code))
            .ok_or_else(|| {
                annotation(
                    file,
                    line,
                    attribute.name(),
                    format!(
                        "`{}` is not a {} code (expected {})",
                        shorten(s),
                        attribute.name(),
                        attribute.codes_text()
                    ),
                )
            })?;
        attributes[k] = class;
    }
    Ok(Record {
        line,
        path,
        landmarks,
        attributes,
    })
}

/// Normalises an image path: `\` and `/` both separate components, `.` and empty components
/// are dropped. Absolute paths (`/x`, `\x`, `C:x`) and `..` are rejected, so every image lies
/// inside the data folder (symbolic links inside it are followed as usual).
fn parse_path(file: &Path, line: usize, s: &str) -> Result<PathBuf> {
    let bad = |reason: &str| annotation(file, line, "path", format!("`{}` {reason}", shorten(s)));
    if s.starts_with('/') || s.starts_with('\\') {
        return Err(bad(
            "is absolute; image paths must be relative to the data folder",
        ));
    }
    let b = s.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Err(bad(
            "has a drive letter; image paths must be relative to the data folder",
        ));
    }
    let mut out = PathBuf::new();
    for part in s.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err(bad("climbs out of the data folder (`..`)")),
            p => out.push(p),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(bad("names no file"));
    }
    Ok(out)
}

fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}...")
    }
}

fn annotation(file: &Path, line: usize, field: &str, reason: String) -> DataError {
    DataError::Annotation {
        file: file.to_path_buf(),
        line,
        field: field.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "lfw_5590\\Aaron_Eckhart_0001.jpg 107.250000 147.750000 126.250000 106.250000 140.750000 108.750000 113.250000 143.750000 158.750000 162.750000 1 2 2 3";

    #[test]
    fn parses_a_shipped_line() -> Result<()> {
        let text = format!("{GOOD}\r\n {GOOD}\r\n ");
        let r = parse_annotations(
            Path::new("training.txt"),
            text.as_bytes(),
            ParseOptions::default(),
        )?;
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].line, 2);
        assert_eq!(
            r[0].path,
            Path::new("lfw_5590").join("Aaron_Eckhart_0001.jpg")
        );
        assert_eq!(r[0].landmarks[0], 107.25);
        assert_eq!(r[0].landmarks[9], 162.75);
        assert_eq!(r[0].attributes, [0, 1, 1, 2]);
        assert_eq!(r[0].attribute(Attribute::Pose), 2);
        Ok(())
    }

    #[test]
    fn codes_map_to_classes_in_one_place() {
        assert_eq!(Attribute::Pose.class_of(5), Some(4));
        assert_eq!(Attribute::Pose.class_of(6), None);
        assert_eq!(Attribute::Gender.class_of(0), None);
        assert_eq!(Attribute::Gender.code_of(1), 2);
    }

    #[test]
    fn fourteen_fields_name_the_pose() {
        let bad = GOOD.rsplit_once(' ').map(|(a, _)| a).unwrap_or(GOOD);
        let text = format!("{GOOD}\n{GOOD}\n{GOOD}\n{GOOD}\n{GOOD}\n{GOOD}\n{bad} \n");
        let e = parse_annotations(
            Path::new("training.txt"),
            text.as_bytes(),
            ParseOptions::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("training.txt:7: field pose: missing"),
            "{e}"
        );
    }
}
