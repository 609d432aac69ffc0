//! Human names of the face attributes' classes (0-based class = MTFL code − 1).

/// The name of class `class` of task `task`, or the class number for tasks not known here.
pub fn class_name(task: &str, class: u32) -> String {
    let names: &[&str] = match task {
        "gender" => &["male", "female"],
        "smile" => &["smiling", "not smiling"],
        "glasses" => &["glasses", "no glasses"],
        "pose" => &["left profile", "left", "frontal", "right", "right profile"],
        _ => &[],
    };
    names
        .get(class as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("class {class}"))
}

/// Names of the five landmarks, in MTFL's order.
pub const LANDMARKS: [&str; 5] = ["left eye", "right eye", "nose", "mouth left", "mouth right"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_mtfl_codes() {
        assert_eq!(class_name("gender", 0), "male");
        assert_eq!(class_name("pose", 2), "frontal");
        assert_eq!(class_name("other", 3), "class 3");
    }
}
