//! Label sets as types. A closed set of label values (the reasons, the
//! flapping kinds, the error kinds, the event kinds) is a [`Label`] type,
//! and [`By<L, T>`] holds one `T` per value, indexed by the value itself:
//! never by a number written by hand, and never looked up by its string.
//! Metrics keep their pre-resolved series in a `By`, so the hot path is an
//! index and an atomic add.
//!
//! A leaf: it names no other module. The types it indexes implement
//! [`Label`] beside their own definitions, and name their `By` there
//! (`ByReason` in `reasons.rs`, `ByKind` in `flapping`).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};

/// A closed set of label values.
pub trait Label: Copy + 'static {
    /// Every value, in label order: `ALL[v.index()]` has `v`'s label.
    const ALL: &'static [Self];

    /// The value's position in [`Label::ALL`].
    fn index(self) -> usize;

    /// The label value, as series show it.
    fn as_label(self) -> &'static str;
}

/// One `T` for each value of the label set `L`.
pub struct By<L: Label, T> {
    values: Box<[T]>,
    label: PhantomData<L>,
}

impl<L: Label, T> By<L, T> {
    /// `f(value)` for every value, in label order.
    pub fn from_fn(f: impl FnMut(L) -> T) -> Self {
        By {
            values: L::ALL.iter().copied().map(f).collect(),
            label: PhantomData,
        }
    }

    /// [`By::from_fn`] for a fallible `f`: the first error, if any.
    pub fn try_from_fn<E>(f: impl FnMut(L) -> Result<T, E>) -> Result<Self, E> {
        Ok(By {
            values: L::ALL.iter().copied().map(f).collect::<Result<_, E>>()?,
            label: PhantomData,
        })
    }

    /// Each value with its `T`, in label order.
    pub fn iter(&self) -> impl Iterator<Item = (L, &T)> {
        L::ALL.iter().copied().zip(self.values.iter())
    }

    /// Every `T`, in label order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.values.iter()
    }
}

impl<L: Label, T: Default> Default for By<L, T> {
    fn default() -> Self {
        By::from_fn(|_| T::default())
    }
}

impl<L: Label, T: Clone> Clone for By<L, T> {
    fn clone(&self) -> Self {
        By {
            values: self.values.clone(),
            label: PhantomData,
        }
    }
}

impl<L: Label, T: fmt::Debug> fmt::Debug for By<L, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(l, v)| (l.as_label(), v)))
            .finish()
    }
}

impl<L: Label, T> Index<L> for By<L, T> {
    type Output = T;

    fn index(&self, label: L) -> &T {
        &self.values[label.index()]
    }
}

impl<L: Label, T> IndexMut<L> for By<L, T> {
    fn index_mut(&mut self, label: L) -> &mut T {
        &mut self.values[label.index()]
    }
}
