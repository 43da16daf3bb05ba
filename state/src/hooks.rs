//! Hooks: code that runs around saving and loading a value, and the
//! [`LoadContext`] and [`Resources`] handed to load hooks.
//!
//! Ordering (DESIGN §4): `before_save` runs once per value, before its fields
//! are written. `after_load` runs once all of a value's fields are loaded
//! (children before parents) and before the value is shared through an
//! `Rc`/`Arc`. Closures given to [`LoadContext::defer`] run after the whole
//! graph is built and linked (so `Weak`s upgrade), in registration order;
//! closures deferred while deferred closures run are run too, after them.

use std::any::{Any, TypeId};
use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};

/// Called after a value's fields are loaded (`#[state(after_load)]`).
pub trait AfterLoad {
    /// Re-attaches what the checkpoint could not hold; an `Err` fails the load.
    fn after_load(&mut self, cx: &mut LoadContext) -> Result<(), Error>;
}

/// Called before a value's fields are saved (`#[state(before_save)]`).
pub trait BeforeSave {
    /// Prepares the value for saving; an `Err` fails the save.
    fn before_save(&self) -> Result<(), Error>;
}

/// A typed map of things the restoring program lends to load hooks: a clock,
/// a socket factory, a registry of open files.
///
/// ```
/// let mut r = stateify::Resources::new();
/// r.insert(42u32);
/// assert_eq!(r.get::<u32>(), Some(&42));
/// *r.get_mut::<u32>().unwrap() += 1;
/// assert_eq!(r.get::<u32>(), Some(&43));
/// assert!(r.get::<String>().is_none());
/// ```
#[derive(Default)]
pub struct Resources {
    map: FxHashMap<TypeId, Box<dyn Any>>,
}

impl Resources {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts a value, returning the previous value of that type.
    pub fn insert<T: 'static>(&mut self, v: T) -> Option<T> {
        self.map
            .insert(TypeId::of::<T>(), Box::new(v))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// The value of type `T`, if any.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.map.get(&TypeId::of::<T>())?.downcast_ref()
    }

    /// The value of type `T`, mutably, if any.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.map.get_mut(&TypeId::of::<T>())?.downcast_mut()
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: 'static>(&mut self) -> Option<T> {
        self.map
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }
}

type Deferred = Box<dyn FnOnce(&mut LoadContext<'_>) -> Result<(), Error>>;

/// What a load hook can reach: the caller's [`Resources`] and a queue of
/// closures to run once the whole graph is built.
pub struct LoadContext<'r> {
    resources: &'r mut Resources,
    deferred: VecDeque<Deferred>,
    ran: usize,
}

impl<'r> LoadContext<'r> {
    pub(crate) fn new(resources: &'r mut Resources) -> Self {
        LoadContext {
            resources,
            deferred: VecDeque::new(),
            ran: 0,
        }
    }

    /// The resource of type `T` lent by the caller of `load_with`.
    pub fn resource<T: 'static>(&self) -> Option<&T> {
        self.resources.get()
    }

    /// The resource of type `T`, mutably.
    pub fn resource_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.resources.get_mut()
    }

    /// All resources.
    pub fn resources(&mut self) -> &mut Resources {
        self.resources
    }

    /// Runs `f` after the whole graph is loaded and linked, in registration order.
    pub fn defer<F>(&mut self, f: F)
    where
        F: FnOnce(&mut LoadContext<'_>) -> Result<(), Error> + 'static,
    {
        self.deferred.push_back(Box::new(f));
    }

    pub(crate) fn run_deferred(&mut self) -> Result<()> {
        while let Some(f) = self.deferred.pop_front() {
            let k = self.ran;
            self.ran += 1;
            f(self).map_err(|e| e.in_field(&format!("<deferred hook #{k}>")))?;
        }
        Ok(())
    }
}
