//! `tandem_data::table`: CSV tables of features or images. A clean round trip, splits,
//! standardisation, image decoding and resizing, and one test per flaw, each an error naming the
//! file, the line and the column, never a panic.
#![allow(clippy::unwrap_used)]
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tandem_data::table::{Table, TableOptions, TableTask, TableTaskKind};
use tandem_data::{DataError, Dataset, Label, Sample, Subset};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Options of a feature table with features `x1, x2` and the tasks `cls` (3 classes, column
/// `c`), `bin` (column `b`) and `reg` (columns `r1, r2`).
fn feature_options() -> TableOptions {
    TableOptions {
        features: vec!["x1".into(), "x2".into()],
        tasks: vec![
            TableTask::new("cls", TableTaskKind::Class { classes: 3 }, ["c"]),
            TableTask::new("bin", TableTaskKind::Binary, ["b"]),
            TableTask::new("reg", TableTaskKind::Regression, ["r1", "r2"]),
        ],
        ..TableOptions::default()
    }
}

const HEADER: &str = "id,x1,x2,c,b,r1,r2";

fn samples(data: &Arc<dyn Dataset>) -> Vec<Sample> {
    (0..data.len()).map(|i| data.get(i).unwrap()).collect()
}

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() < 1e-6
}

#[test]
fn clean_table_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    // A byte order mark, spaces around cells, a quoted cell, a blank line, an ignored `id`
    // column, missing labels, and a split column.
    let text = "\u{feff}id, x1 ,x2,c,b,r1,r2,split\n\
                a,1,10,0,1,0.5,-2,train\n\
                \n\
                \"b, quoted\",2,10,2,,,,train\n\
                c,3,10,,0,1e1,3,Train\n\
                d,5,-4,1,1,0,0,val\n";
    let path = write(dir.path(), "data.csv", text);
    let table = Table::open(&path, &feature_options()).unwrap();
    assert_eq!(table.len(), 4);
    assert!(!table.is_empty());
    assert_eq!(table.path(), path.as_path());
    assert_eq!(table.input_shape(), [2, 1, 1]);
    assert_eq!(table.split_column(), Some("split"));
    assert_eq!(table.input_columns(), ["x1", "x2"]);

    let splits = table.splits(0.5, 1).unwrap();
    assert_eq!((splits.train.len(), splits.val.len()), (3, 1));
    assert!(splits.test.is_none());
    // Training rows x1 = [1, 2, 3]: mean 2, population std sqrt(2/3); x2 constant: std 1.
    let stats = splits.stats.clone().unwrap();
    let std1 = (2.0f64 / 3.0).sqrt();
    assert_eq!(stats.mean, vec![2.0, 10.0]);
    assert_eq!(stats.std, vec![std1, 1.0]);
    let json = serde_json::to_string(&stats).unwrap();
    assert_eq!(
        serde_json::from_str::<tandem_data::FeatureStats>(&json).unwrap(),
        stats
    );

    let train = samples(&splits.train);
    let want_x1 = [-1.0 / std1, 0.0, 1.0 / std1];
    for (s, want) in train.iter().zip(want_x1) {
        assert_eq!((s.image.channels, s.image.height, s.image.width), (2, 1, 1));
        assert!(close(s.image.pixels[0], want), "{:?}", s.image.pixels);
        assert_eq!(s.image.pixels[1], 0.0);
    }
    let labels: Vec<Vec<&Label>> = train.iter().map(|s| s.labels.values().collect()).collect();
    assert_eq!(
        labels[0],
        [
            &Label::Class(0),
            &Label::Binary(true),
            &Label::Values(vec![0.5, -2.0])
        ]
    );
    assert_eq!(
        labels[1],
        [&Label::Class(2), &Label::Missing, &Label::Missing]
    );
    assert_eq!(
        labels[2],
        [
            &Label::Missing,
            &Label::Binary(false),
            &Label::Values(vec![10.0, 3.0])
        ]
    );
    assert_eq!(
        train[0].labels.keys().collect::<Vec<_>>(),
        ["cls", "bin", "reg"]
    );

    // The val row is standardised with the training statistics.
    let val = splits.val.get(0).unwrap();
    assert!(close(val.image.pixels[0], 3.0 / std1));
    assert!(close(val.image.pixels[1], -14.0));
    assert_eq!(val.labels["cls"], Label::Class(1));
    // `get` is deterministic and out-of-range indices are errors.
    assert_eq!(splits.val.get(0).unwrap(), val);
    assert!(splits.val.get(1).is_err());
    // The statistics standardise new rows the same way.
    assert_eq!(stats.standardise(&[5.0, -4.0]).unwrap(), val.image.pixels);
}

#[test]
fn points_without_an_image_are_kept_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "p.csv", "f,x1,x2,y1,y2\n1,10,20,30,40\n2,,,,\n");
    let options = TableOptions {
        features: vec!["f".into()],
        tasks: vec![TableTask::new(
            "pts",
            TableTaskKind::Points,
            ["x1", "x2", "y1", "y2"],
        )],
        ..TableOptions::default()
    };
    let table = Table::open(&path, &options).unwrap();
    assert_eq!(table.split_column(), None);
    let splits = table.splits(0.5, 0).unwrap();
    let mut all = samples(&splits.train);
    all.extend(samples(&splits.val));
    let labels: Vec<_> = all.iter().map(|s| s.labels["pts"].clone()).collect();
    assert!(labels.contains(&Label::Points(vec![10.0, 20.0, 30.0, 40.0])));
    assert!(labels.contains(&Label::Missing));
}

/// A feature table of `n` rows whose regression label `row` is the row index.
fn numbered(dir: &Path, n: usize) -> Table {
    let mut text = String::from("x,row\n");
    for i in 0..n {
        text.push_str(&format!("{},{i}\n", i * i));
    }
    let path = write(dir, "n.csv", &text);
    let options = TableOptions {
        features: vec!["x".into()],
        tasks: vec![TableTask::new("row", TableTaskKind::Regression, ["row"])],
        ..TableOptions::default()
    };
    Table::open(&path, &options).unwrap()
}

fn rows(data: &Arc<dyn Dataset>) -> Vec<usize> {
    samples(data)
        .iter()
        .map(|s| match &s.labels["row"] {
            Label::Values(v) => v[0] as usize,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Only a length, to compare with `Subset::split`.
struct Len(usize);
impl Dataset for Len {
    fn len(&self) -> usize {
        self.0
    }
    fn get(&self, _: usize) -> tandem_data::Result<Sample> {
        Err(DataError::Invalid("no samples".into()))
    }
}

#[test]
fn random_split_is_seeded_and_follows_subset_split() {
    let dir = tempfile::tempdir().unwrap();
    let table = numbered(dir.path(), 20);
    let a = table.splits(0.25, 9).unwrap();
    let b = table.splits(0.25, 9).unwrap();
    let c = table.splits(0.25, 10).unwrap();
    assert!(a.test.is_none());
    assert_eq!((a.train.len(), a.val.len()), (15, 5));
    assert_eq!(rows(&a.train), rows(&b.train));
    assert_eq!(rows(&a.val), rows(&b.val));
    assert_eq!(samples(&a.train), samples(&b.train));
    assert_ne!(rows(&a.val), rows(&c.val));
    // The same convention as `Subset::split(data, 1 − val_fraction, seed)`.
    let (train, val) = Subset::split(Arc::new(Len(20)), 0.75, 9).unwrap();
    assert_eq!(rows(&a.train), train.indices());
    assert_eq!(rows(&a.val), val.indices());
    // Statistics come from the training rows only.
    let xs: Vec<f64> = train.indices().iter().map(|&i| (i * i) as f64).collect();
    let mean = xs.iter().sum::<f64>() / 15.0;
    assert_eq!(a.stats.unwrap().mean, vec![mean]);
    // A fraction that leaves a part empty is an error.
    for bad in [0.0, 1.0, -0.5, f64::NAN, 0.01] {
        let err = table.splits(bad, 9).unwrap_err().to_string();
        assert!(
            err.contains("n.csv") && err.contains("val_fraction"),
            "{err}"
        );
    }
}

#[test]
fn split_column_chooses_train_val_and_test() {
    let dir = tempfile::tempdir().unwrap();
    let text = "x,row,part\n0,0,test\n1,1,train\n2,2,val\n3,3,train\n4,4,TEST\n5,5,val\n";
    let path = write(dir.path(), "s.csv", text);
    let options = TableOptions {
        features: vec!["x".into()],
        tasks: vec![TableTask::new("row", TableTaskKind::Regression, ["row"])],
        split_column: "part".into(),
        ..TableOptions::default()
    };
    let table = Table::open(&path, &options).unwrap();
    for seed in [0, 1] {
        let s = table.splits(0.5, seed).unwrap();
        assert_eq!(rows(&s.train), [1, 3]);
        assert_eq!(rows(&s.val), [2, 5]);
        assert_eq!(rows(s.test.as_ref().unwrap()), [0, 4]);
        assert_eq!(s.stats.unwrap().mean, vec![2.0]);
    }
    // Without a `val` row: an error naming the split column.
    let path = write(dir.path(), "s.csv", "x,row,part\n0,0,train\n1,1,test\n");
    let err = Table::open(&path, &options)
        .unwrap()
        .splits(0.5, 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("s.csv: line 1, column part") && err.contains("`val`"),
        "{err}"
    );
    // Without the column, the split is random even though the options name it.
    let table = numbered(dir.path(), 4);
    assert_eq!(table.split_column(), None);
    assert!(table.splits(0.5, 0).unwrap().test.is_none());
}

fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// `dir/img/`: a grey 8×4 PNG of value 51, an RGB 5×9 PNG of (255, 0, 102), a textured RGB
/// 12×10 JPEG and a file that is not an image.
fn write_images(dir: &Path) {
    let img = dir.join("img");
    std::fs::create_dir_all(&img).unwrap();
    let grey = image::GrayImage::from_pixel(8, 4, image::Luma([51]));
    let colour = image::RgbImage::from_pixel(5, 9, image::Rgb([255, 0, 102]));
    let jpeg = image::RgbImage::from_fn(12, 10, |x, y| image::Rgb([x as u8 * 20, y as u8, 90]));
    use image::{DynamicImage as D, ImageFormat as F};
    std::fs::write(img.join("grey.png"), encode(D::ImageLuma8(grey), F::Png)).unwrap();
    std::fs::write(img.join("red.png"), encode(D::ImageRgb8(colour), F::Png)).unwrap();
    std::fs::write(img.join("t.jpg"), encode(D::ImageRgb8(jpeg), F::Jpeg)).unwrap();
    std::fs::write(img.join("bad.png"), b"not an image at all").unwrap();
}

fn image_options(channels: usize) -> TableOptions {
    TableOptions {
        image: Some("file".into()),
        image_size: 6,
        channels,
        tasks: vec![
            TableTask::new("pts", TableTaskKind::Points, ["x1", "x2", "y1", "y2"]),
            TableTask::new("kind", TableTaskKind::Class { classes: 2 }, ["k"]),
        ],
        ..TableOptions::default()
    }
}

const IMAGES: &str = "file,x1,x2,y1,y2,k\n\
                      img/grey.png,2,4,1,3,0\n\
                      img/red.png,1,5,0,9,1\n\
                      img/t.jpg,6,12,5,10,\n";

#[test]
fn image_table_decodes_resizes_and_normalises_points() {
    let dir = tempfile::tempdir().unwrap();
    write_images(dir.path());
    let path = write(dir.path(), "images.csv", IMAGES);

    let table = Table::open(&path, &image_options(3)).unwrap();
    assert_eq!(table.input_shape(), [3, 6, 6]);
    assert_eq!(table.input_columns(), ["file"]);
    let splits = table.splits(1.0 / 3.0, 4).unwrap();
    assert!(splits.stats.is_none());
    let mut all = samples(&splits.train);
    all.extend(samples(&splits.val));
    assert_eq!(all.len(), 3);
    for s in &all {
        assert_eq!((s.image.channels, s.image.height, s.image.width), (3, 6, 6));
        assert_eq!(s.image.pixels.len(), 3 * 36);
    }
    let by_kind = |k: &Label| all.iter().find(|s| &s.labels["kind"] == k).unwrap();
    // The constant red image: planar R, G, B of 1, 0, 0.4 everywhere.
    let red = by_kind(&Label::Class(1));
    for (c, want) in [1.0, 0.0, 0.4].into_iter().enumerate() {
        assert!(red.image.pixels[c * 36..(c + 1) * 36]
            .iter()
            .all(|&v| close(v, want) || (f64::from(v) - want).abs() < 1e-5));
    }
    // Points are divided by the original width and height (5×9).
    assert_eq!(
        red.labels["pts"],
        Label::Points(vec![1.0 / 5.0, 5.0 / 5.0, 0.0, 9.0 / 9.0])
    );
    // Grey repeated into three channels: 51 / 255 = 0.2; points over 8×4.
    let grey = by_kind(&Label::Class(0));
    assert!(grey.image.pixels.iter().all(|&v| (v - 0.2).abs() < 1e-5));
    assert_eq!(
        grey.labels["pts"],
        Label::Points(vec![2.0 / 8.0, 4.0 / 8.0, 1.0 / 4.0, 3.0 / 4.0])
    );
    let jpeg = by_kind(&Label::Missing);
    assert_eq!(jpeg.labels["pts"], Label::Points(vec![0.5, 1.0, 0.5, 1.0]));
    assert!(jpeg.image.pixels.iter().all(|v| (0.0..=1.0).contains(v)));

    // One channel: Rec. 709 luma of the red image, 0.2126 + 0.0722 · 0.4.
    let table = Table::open(&path, &image_options(1)).unwrap();
    assert_eq!(table.input_shape(), [1, 6, 6]);
    let splits = table.splits(1.0 / 3.0, 4).unwrap();
    let mut all = samples(&splits.train);
    all.extend(samples(&splits.val));
    let red = all
        .iter()
        .find(|s| s.labels["kind"] == Label::Class(1))
        .unwrap();
    assert_eq!(red.image.pixels.len(), 36);
    let luma = 0.2126 + 0.0722 * 0.4;
    assert!(red
        .image
        .pixels
        .iter()
        .all(|&v| (f64::from(v) - luma).abs() < 1.0 / 255.0));
}

// ---- Errors: each names the file, the line and the column. ----

/// Opens `text` as `data.csv` with `options` and returns the error message, checking that it
/// names the file, `line {line}` and `column {column}`.
fn fails(text: &str, options: &TableOptions, line: usize, column: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_images(dir.path());
    let path = write(dir.path(), "data.csv", text);
    let err = Table::open(&path, options).unwrap_err();
    assert!(matches!(err, DataError::Table { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("data.csv: "), "{msg}");
    assert!(
        msg.contains(&format!("line {line}")),
        "want line {line}: {msg}"
    );
    if column.is_empty() {
        assert!(!msg.contains(", column "), "{msg}");
    } else {
        assert!(
            msg.contains(&format!("column {column}")),
            "want {column}: {msg}"
        );
    }
    msg
}

/// A clean feature table with `row` replacing line 3 (the second data row).
fn with_row(row: &str) -> String {
    format!("{HEADER}\na,1,2,0,1,0,0\n{row}\nc,3,4,2,0,1,1\n")
}

#[test]
fn the_clean_feature_table_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "data.csv", &with_row("b,2,3,1,0,5,6"));
    assert_eq!(Table::open(&path, &feature_options()).unwrap().len(), 3);
}

#[test]
fn non_numeric_feature() {
    let msg = fails(&with_row("b,seven,3,1,0,5,6"), &feature_options(), 3, "x1");
    assert!(msg.contains("`seven` is not a number"), "{msg}");
}

/// Files written with `\r\n` line ends (Python's csv module, spreadsheets) count lines the
/// same way.
#[test]
fn crlf_lines_are_counted_from_the_file() {
    let text =
        with_row("b,2,3,1,0,5,6").replace('\n', "\r\n") + "d,4,5,1,1,0,0\r\ne,x,5,1,1,0,0\r\n";
    let msg = fails(&text, &feature_options(), 6, "x1");
    assert!(msg.contains("`x` is not a number"), "{msg}");
}

#[test]
fn non_finite_feature() {
    for bad in ["inf", "nan", "NaN", "-inf", "1e400"] {
        let msg = fails(
            &with_row(&format!("b,2,{bad},1,0,5,6")),
            &feature_options(),
            3,
            "x2",
        );
        assert!(msg.contains("not a finite number"), "{msg}");
    }
}

#[test]
fn empty_feature_cell() {
    let msg = fails(&with_row("b,,3,1,0,5,6"), &feature_options(), 3, "x1");
    assert!(msg.contains("empty feature cell"), "{msg}");
}

#[test]
fn class_label_out_of_range_or_not_an_integer() {
    for bad in ["1.5", "-1", "3", "two"] {
        let msg = fails(
            &with_row(&format!("b,2,3,{bad},0,5,6")),
            &feature_options(),
            3,
            "c",
        );
        assert!(msg.contains(bad) && msg.contains("0 to 2"), "{msg}");
    }
}

#[test]
fn binary_label_other_than_0_or_1() {
    for bad in ["2", "yes", "0.5"] {
        let msg = fails(
            &with_row(&format!("b,2,3,1,{bad},5,6")),
            &feature_options(),
            3,
            "b",
        );
        assert!(msg.contains("expected 0 or 1"), "{msg}");
    }
}

#[test]
fn non_finite_or_non_numeric_regression_label() {
    let msg = fails(&with_row("b,2,3,1,0,5,inf"), &feature_options(), 3, "r2");
    assert!(msg.contains("not a finite number"), "{msg}");
    fails(&with_row("b,2,3,1,0,five,6"), &feature_options(), 3, "r1");
}

#[test]
fn partly_empty_multi_column_label() {
    let msg = fails(&with_row("b,2,3,1,0,,6"), &feature_options(), 3, "r1");
    assert!(msg.contains("task `reg`"), "{msg}");
}

#[test]
fn ragged_row() {
    let msg = fails(&with_row("b,2,3,1,0,5"), &feature_options(), 3, "r2");
    assert!(msg.contains("6 cells, the header has 7"), "{msg}");
    let msg = fails(&with_row("b,2,3,1,0,5,6,7"), &feature_options(), 3, "#8");
    assert!(msg.contains("8 cells, the header has 7"), "{msg}");
}

#[test]
fn line_numbers_count_blank_lines_and_quoted_newlines() {
    let text = format!("{HEADER}\n\na,1,2,0,1,0,0\n\"two\nlines\",1,2,0,1,0,0\nc,x,4,2,0,1,1\n");
    fails(&text, &feature_options(), 6, "x1");
}

#[test]
fn feature_column_missing_from_the_header() {
    let mut options = feature_options();
    options.features.push("weight".into());
    let msg = fails(&with_row("b,2,3,1,0,5,6"), &options, 1, "weight");
    assert!(msg.contains("(it has: id, x1, x2, c, b, r1, r2)"), "{msg}");
}

#[test]
fn task_columns_missing_from_the_header() {
    let mut options = feature_options();
    options.tasks.push(TableTask::new(
        "age",
        TableTaskKind::Regression,
        ["age_years"],
    ));
    let msg = fails(&with_row("b,2,3,1,0,5,6"), &options, 1, "age_years");
    assert!(
        msg.contains("task `age`") && msg.contains("it has: id,"),
        "{msg}"
    );
}

#[test]
fn duplicate_header_name() {
    let text = "id,x1,x2,c,b,r1,x1\na,1,2,0,1,0,0\n";
    let msg = fails(text, &feature_options(), 1, "x1");
    assert!(msg.contains("twice (columns 2 and 7)"), "{msg}");
}

#[test]
fn image_that_does_not_decode() {
    let text = format!("{}img/bad.png,1,1,1,1,0\n", IMAGES);
    let msg = fails(&text, &image_options(3), 5, "file");
    assert!(
        msg.contains("image `img/bad.png`") && msg.contains("not a JPEG or PNG"),
        "{msg}"
    );
}

#[test]
fn image_that_does_not_exist() {
    let text = IMAGES.replace("img/red.png", "img/nowhere.png");
    let msg = fails(&text, &image_options(1), 3, "file");
    assert!(
        msg.contains("image `img/nowhere.png` does not exist"),
        "{msg}"
    );
    assert!(msg.contains("looked for"), "{msg}");
}

#[test]
fn empty_image_cell() {
    let text = IMAGES.replace("img/red.png", "");
    let msg = fails(&text, &image_options(1), 3, "file");
    assert!(msg.contains("empty image cell"), "{msg}");
}

#[test]
fn bad_split_cell() {
    let text = "id,x1,x2,c,b,r1,r2,split\na,1,2,0,1,0,0,train\nb,1,2,0,1,0,0,training\n";
    let msg = fails(text, &feature_options(), 3, "split");
    assert!(msg.contains("`training` is not a split"), "{msg}");
    let text = "id,x1,x2,c,b,r1,r2,split\na,1,2,0,1,0,0,train\nb,1,2,0,1,0,0,\n";
    fails(text, &feature_options(), 3, "split");
}

#[test]
fn empty_table() {
    let msg = fails(&format!("{HEADER}\n"), &feature_options(), 1, "");
    assert!(msg.contains("no data rows"), "{msg}");
    let msg = fails("", &feature_options(), 1, "");
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn features_and_image_both_or_neither() {
    let mut both = image_options(3);
    both.features = vec!["x1".into()];
    let msg = fails(IMAGES, &both, 1, "file");
    assert!(
        msg.contains("both features (x1) and an image column"),
        "{msg}"
    );
    let mut neither = image_options(3);
    neither.image = None;
    let msg = fails(IMAGES, &neither, 1, "");
    assert!(msg.contains("no input"), "{msg}");
}

#[test]
fn channels_not_1_or_3() {
    for channels in [0, 2, 4] {
        let msg = fails(IMAGES, &image_options(channels), 1, "file");
        assert!(msg.contains(&format!("channels = {channels}")), "{msg}");
    }
    let mut options = image_options(3);
    options.image_size = 0;
    fails(IMAGES, &options, 1, "file");
}

#[test]
fn class_task_with_fewer_than_two_classes() {
    let mut options = feature_options();
    options.tasks[0].kind = TableTaskKind::Class { classes: 1 };
    let msg = fails(&with_row("b,2,3,0,0,5,6"), &options, 1, "c");
    assert!(msg.contains("classes = 1"), "{msg}");
}

#[test]
fn task_columns_that_do_not_fit_the_kind() {
    let mut options = feature_options();
    options.tasks[1].columns.push("r1".into());
    let msg = fails(&with_row("b,2,3,0,0,5,6"), &options, 1, "b");
    assert!(msg.contains("exactly one"), "{msg}");
    let mut options = feature_options();
    options.tasks[2].kind = TableTaskKind::Points;
    options.tasks[2].columns.push("x1".into());
    let msg = fails(&with_row("b,2,3,0,0,5,6"), &options, 1, "r1");
    assert!(msg.contains("even number"), "{msg}");
    let mut options = feature_options();
    options.tasks[1].name = "cls".into();
    let msg = fails(&with_row("b,2,3,0,0,5,6"), &options, 1, "b");
    assert!(msg.contains("used twice"), "{msg}");
}

#[test]
fn a_file_that_cannot_be_read_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.csv");
    let err = Table::open(&path, &feature_options()).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.csv"), "{err}");
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = with_row("b,2,3,1,0,5,6").into_bytes();
    bytes.extend_from_slice(b"d,1,2,0,1,\xff,0\n");
    let path = dir.path().join("data.csv");
    std::fs::write(&path, bytes).unwrap();
    let msg = Table::open(&path, &feature_options())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("data.csv: line 5, column r1"), "{msg}");
}
