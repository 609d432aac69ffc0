//! [`TaskMap`]: an insertion-ordered map from task name to a value.
//!
//! Multi-task code sums losses, iterates heads and prints tables per task. Doing that over a
//! `HashMap` makes the order (and so floating-point sums) depend on the hasher; `TaskMap` keeps
//! the order in which tasks were declared, which is the order of every loop in tandem.
//! Lookups are linear: there are a handful of tasks, not thousands.
use serde::{Deserialize, Serialize};

/// An ordered map keyed by task name; iteration follows insertion order.
///
/// ```
/// use tandem_tensor::TaskMap;
/// let mut m = TaskMap::new();
/// m.insert("landmarks", 1.0);
/// m.insert("smile", 0.5);
/// assert_eq!(m.keys().collect::<Vec<_>>(), ["landmarks", "smile"]);
/// assert_eq!(m["smile"], 0.5);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<(String, T)>", into = "Vec<(String, T)>")]
#[serde(bound(
    serialize = "T: Serialize + Clone",
    deserialize = "T: Deserialize<'de>"
))]
pub struct TaskMap<T> {
    entries: Vec<(String, T)>,
}

impl<T> Default for TaskMap<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T> TaskMap<T> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `value` under `name`; an existing entry keeps its position and gets the new
    /// value, which is returned.
    pub fn insert(&mut self, name: impl Into<String>, value: T) -> Option<T> {
        let name = name.into();
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((name, value));
                None
            }
        }
    }

    /// Builder form of [`TaskMap::insert`].
    pub fn with(mut self, name: impl Into<String>, value: T) -> Self {
        self.insert(name, value);
        self
    }

    /// The value under `name`.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The value under `name`, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Removes and returns the value under `name`, keeping the others' order.
    pub fn remove(&mut self, name: &str) -> Option<T> {
        let pos = self.entries.iter().position(|(k, _)| k == name)?;
        Some(self.entries.remove(pos).1)
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The position of `name` in iteration order.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == name)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Entries in order, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut T)> {
        self.entries.iter_mut().map(|(k, v)| (k.as_str(), v))
    }

    /// Names in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Values in order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// A new map with `f` applied to every value, same order.
    pub fn map<U>(&self, mut f: impl FnMut(&str, &T) -> U) -> TaskMap<U> {
        TaskMap {
            entries: self
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), f(k, v)))
                .collect(),
        }
    }

    /// Like [`TaskMap::map`] for fallible `f`; stops at the first error.
    pub fn try_map<U, E>(
        &self,
        mut f: impl FnMut(&str, &T) -> Result<U, E>,
    ) -> Result<TaskMap<U>, E> {
        let mut entries = Vec::with_capacity(self.entries.len());
        for (k, v) in &self.entries {
            entries.push((k.clone(), f(k, v)?));
        }
        Ok(TaskMap { entries })
    }
}

impl<T> std::ops::Index<&str> for TaskMap<T> {
    type Output = T;
    /// # Panics
    /// When `name` is absent (like `HashMap`'s `Index`); use [`TaskMap::get`] otherwise.
    fn index(&self, name: &str) -> &T {
        match self.get(name) {
            Some(v) => v,
            None => panic!("no task named {name:?} in TaskMap"),
        }
    }
}

impl<K: Into<String>, T> FromIterator<(K, T)> for TaskMap<T> {
    fn from_iter<I: IntoIterator<Item = (K, T)>>(iter: I) -> Self {
        let mut m = TaskMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<T> IntoIterator for TaskMap<T> {
    type Item = (String, T);
    type IntoIter = std::vec::IntoIter<(String, T)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<T> From<Vec<(String, T)>> for TaskMap<T> {
    fn from(v: Vec<(String, T)>) -> Self {
        v.into_iter().collect()
    }
}

impl<T> From<TaskMap<T>> for Vec<(String, T)> {
    fn from(m: TaskMap<T>) -> Self {
        m.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn insert_keeps_position_and_replaces() {
        let mut m = TaskMap::new();
        m.insert("b", 1);
        m.insert("a", 2);
        assert_eq!(m.insert("b", 3), Some(1));
        assert_eq!(m.iter().collect::<Vec<_>>(), [("b", &3), ("a", &2)]);
        assert_eq!(m.remove("b"), Some(3));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn serde_round_trip_keeps_order() -> std::result::Result<(), serde_json::Error> {
        let m: TaskMap<f32> = [("z", 1.0), ("a", 2.0)].into_iter().collect();
        let s = serde_json::to_string(&m)?;
        let back: TaskMap<f32> = serde_json::from_str(&s)?;
        assert_eq!(back, m);
        Ok(())
    }

    proptest! {
        #[test]
        fn iteration_follows_first_insertion(names in proptest::collection::vec("[a-e]", 0..20)) {
            let mut m = TaskMap::new();
            let mut first = Vec::<String>::new();
            for (i, n) in names.iter().enumerate() {
                m.insert(n.clone(), i);
                if !first.contains(n) { first.push(n.clone()); }
            }
            prop_assert_eq!(m.keys().map(String::from).collect::<Vec<_>>(), first);
        }
    }
}
