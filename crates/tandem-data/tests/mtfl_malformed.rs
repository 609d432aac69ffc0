//! Every flaw of a real annotation folder gives an error naming file, line and field (or image),
//! never a panic. Runs on a small synthetic folder (see `common`).
#![allow(clippy::unwrap_used)]
mod common;

use common::{write_images, GOOD};
use std::path::{Path, PathBuf};
use tandem_data::mtfl::{CacheDir, Mtfl, MtflOptions};
use tandem_data::DataError;

/// What a case must report.
enum Want {
    /// An annotation error at this line and field.
    Field(usize, &'static str),
    /// An image error at this line for this image.
    Image(usize, &'static str),
}

fn open(dir: &Path, text: &[u8], strict: bool) -> Result<Mtfl, DataError> {
    std::fs::write(dir.join("training.txt"), text).unwrap();
    let options = MtflOptions {
        cache: CacheDir::Off,
        reject_duplicates: strict,
        ..MtflOptions::default()
    };
    Mtfl::open(dir, options)
}

fn bytes(s: impl Into<String>) -> Vec<u8> {
    s.into().into_bytes()
}

fn with(field: usize, value: &str) -> String {
    let mut f: Vec<String> = GOOD.split(' ').map(String::from).collect();
    f[field] = value.to_string();
    f.join(" ")
}

#[test]
fn malformed_inputs_name_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    write_images(tmp.path());
    let fourteen = GOOD.rsplit_once(' ').unwrap().0.to_string();
    let cases: Vec<(&str, Vec<u8>, bool, Want)> = vec![
        (
            "14 fields",
            bytes(format!("{GOOD}\r\n{fourteen} \r\n")),
            false,
            Want::Field(2, "pose"),
        ),
        (
            "16 fields",
            bytes(format!("{GOOD}\n{GOOD} 1\n")),
            false,
            Want::Field(2, "extra"),
        ),
        (
            "path only",
            bytes(format!("{GOOD}\nimgs/a.png\n")),
            false,
            Want::Field(2, "x1"),
        ),
        (
            "x1 not a number",
            bytes(format!("{GOOD}\n{}\n", with(1, "abc"))),
            false,
            Want::Field(2, "x1"),
        ),
        (
            "y3 NaN",
            bytes(format!("{GOOD}\n{}\n", with(8, "NaN"))),
            false,
            Want::Field(2, "y3"),
        ),
        (
            "x2 infinite",
            bytes(format!("{GOOD}\n{}\n", with(2, "inf"))),
            false,
            Want::Field(2, "x2"),
        ),
        (
            "x5 overflows f32",
            bytes(format!("{}\n", with(5, "1e40"))),
            false,
            Want::Field(1, "x5"),
        ),
        (
            "y5 empty-ish",
            bytes(format!("{}\n", with(10, "1,5"))),
            false,
            Want::Field(1, "y5"),
        ),
        (
            "gender 3",
            bytes(format!("{}\n", with(11, "3"))),
            false,
            Want::Field(1, "gender"),
        ),
        (
            "smile 0",
            bytes(format!("{}\n", with(12, "0"))),
            false,
            Want::Field(1, "smile"),
        ),
        (
            "glasses 1.0",
            bytes(format!("{}\n", with(13, "1.0"))),
            false,
            Want::Field(1, "glasses"),
        ),
        (
            "pose 6",
            bytes(format!("{}\n", with(14, "6"))),
            false,
            Want::Field(1, "pose"),
        ),
        (
            "pose -1",
            bytes(format!("{}\n", with(14, "-1"))),
            false,
            Want::Field(1, "pose"),
        ),
        (
            "gender 2x",
            bytes(format!("{}\n", with(11, "2x"))),
            false,
            Want::Field(1, "gender"),
        ),
        (
            "absolute path",
            bytes(format!("{}\n", with(0, "/etc/passwd"))),
            false,
            Want::Field(1, "path"),
        ),
        (
            "absolute \\ path",
            bytes(format!("{}\n", with(0, "\\imgs\\a.png"))),
            false,
            Want::Field(1, "path"),
        ),
        (
            "drive letter",
            bytes(format!("{}\n", with(0, "C:\\imgs\\a.png"))),
            false,
            Want::Field(1, "path"),
        ),
        (
            "climbs out",
            bytes(format!("{GOOD}\n{}\n", with(0, "imgs/../../a.png"))),
            false,
            Want::Field(2, "path"),
        ),
        (
            "names no file",
            bytes(format!("{}\n", with(0, "./"))),
            false,
            Want::Field(1, "path"),
        ),
        (
            "duplicate, strict",
            bytes(format!("{GOOD}\n\n{GOOD}\n")),
            true,
            Want::Field(3, "path"),
        ),
        (
            "not UTF-8",
            [
                format!("{GOOD}\nimgs\\").as_bytes(),
                b"\xff.png 1 2 3 4 5 6 7 8 9 10 1 1 1 1\n",
            ]
            .concat(),
            false,
            Want::Field(2, "path"),
        ),
        (
            "blank lines counted",
            bytes(format!("\r\n  \r\n\t\r\n{}\r\n", with(3, "x"))),
            false,
            Want::Field(4, "x3"),
        ),
        (
            "degenerate landmarks",
            bytes("imgs/a.png 5 5 5 5 5 5 5 5 5 5 1 1 1 1"),
            false,
            Want::Field(1, "landmarks"),
        ),
        (
            "landmark outside",
            bytes(format!("{GOOD}\n{}\n", with(6, "100.5"))),
            false,
            Want::Field(2, "y1"),
        ),
        (
            "negative landmark",
            bytes(format!("{}\n", with(4, "-0.5"))),
            false,
            Want::Field(1, "x4"),
        ),
        (
            "missing image",
            bytes(format!("{GOOD}\n{}\n", with(0, "imgs/nope.png"))),
            false,
            Want::Image(2, "imgs/nope.png"),
        ),
        (
            "directory",
            bytes(format!("{}\n", with(0, "imgs/dir"))),
            false,
            Want::Image(1, "imgs/dir"),
        ),
        (
            "truncated PNG",
            bytes(format!("{}\n", with(0, "imgs/trunc.png"))),
            false,
            Want::Image(1, "imgs/trunc.png"),
        ),
        (
            "text named .jpg",
            bytes(format!("{}\n", with(0, "imgs\\text.jpg"))),
            false,
            Want::Image(1, "imgs/text.jpg"),
        ),
        (
            "empty file",
            bytes(format!("{}\n", with(0, "imgs/empty.png"))),
            false,
            Want::Image(1, "imgs/empty.png"),
        ),
        (
            "60000x60000 header",
            bytes(format!("{}\n", with(0, "imgs/huge.jpg"))),
            false,
            Want::Image(1, "imgs/huge.jpg"),
        ),
    ];
    assert!(cases.len() >= 20);
    for (name, text, strict, want) in cases {
        let err = match open(tmp.path(), &text, strict) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => e,
        };
        let msg = err.to_string();
        println!("{name}: {msg}");
        match (want, &err) {
            (
                Want::Field(line, field),
                DataError::Annotation {
                    file,
                    line: l,
                    field: f,
                    ..
                },
            ) => {
                assert_eq!(file, Path::new("training.txt"), "{name}: {msg}");
                assert_eq!((*l, f.as_str()), (line, field), "{name}: {msg}");
                assert!(
                    msg.starts_with(&format!("training.txt:{line}: field {field}: ")),
                    "{name}: {msg}"
                );
            }
            (
                Want::Image(line, image),
                DataError::Image {
                    file,
                    line: l,
                    image: i,
                    ..
                },
            ) => {
                assert_eq!(file, Path::new("training.txt"), "{name}: {msg}");
                assert_eq!(
                    (*l, i.clone()),
                    (line, PathBuf::from(image)),
                    "{name}: {msg}"
                );
                assert!(
                    msg.starts_with(&format!("training.txt:{line}: image {image}: ")),
                    "{name}: {msg}"
                );
            }
            _ => panic!("{name}: unexpected error kind: {msg}"),
        }
    }
}

#[test]
fn quirks_of_real_files_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    write_images(tmp.path());
    let colour = "imgs/c.jpg 30 70 50 35 65 20 21 40 55 56 2 1 2 5";
    // BOM, CRLF and LF mixed, leading spaces and tabs, blank and space-only lines, both
    // separators, duplicates (not strict), no final newline.
    let text = format!("\u{FEFF}{GOOD}\r\n \t{colour}  \r\n\r\n   \n imgs/./a.png 30 70 50 35 65 40 41 55 70 71 1 2 2 3");
    let m = open(tmp.path(), text.as_bytes(), false).unwrap();
    let recs = &m.train_split().records;
    assert_eq!(recs.len(), 3);
    assert_eq!(recs.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 2, 5]);
    assert_eq!(recs[0].path, recs[2].path);
    assert_eq!(recs[1].attributes, [1, 0, 1, 4]);
    assert!(m.test().is_none());
    // Duplicates are an error only when asked for.
    let e = open(tmp.path(), text.as_bytes(), true)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("training.txt:5: field path: duplicate"),
        "{e}"
    );
}

#[test]
fn landmarks_outside_can_be_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    write_images(tmp.path());
    std::fs::write(
        tmp.path().join("training.txt"),
        format!("{}\n", with(1, "-3")),
    )
    .unwrap();
    let options = MtflOptions {
        cache: CacheDir::Off,
        allow_landmarks_outside: true,
        ..MtflOptions::default()
    };
    assert!(Mtfl::open(tmp.path(), options).is_ok());
}

#[test]
fn missing_folder_and_file_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Mtfl::open(tmp.path().join("nope"), MtflOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("MTFL data folder not found"), "{e}");
    let e = Mtfl::open(tmp.path(), MtflOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("training.txt"), "{e}");
}
