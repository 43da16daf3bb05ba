//! Suspended construction: objects announced by a forward weak reference.
//!
//! A loaded `Rc`/`Arc` that weak references lead into is built with
//! `new_cyclic`, whose weak handle exists (and does not upgrade) only while
//! its closure runs. With one stack those closures nest, so objects finish
//! in the reverse order they start. Some graphs need another order: an
//! endpoint whose `Weak` points to the stack that owns it, met before that
//! stack (ARCHITECTURE.md, "Construction order"). The saver then announces
//! the stack with `FWD` where the weak reference is, and writes its value
//! later (`DEF`).
//!
//! Here the announced object's `new_cyclic` runs on a small stack of its
//! own (a [`corosensei`] coroutine): started at `FWD`, it suspends inside
//! the closure and hands out its weak handle. At `DEF` the value is loaded
//! on the loader's own stack, as any other, and passed into the coroutine,
//! whose closure returns it: `new_cyclic` finishes. An object announced and
//! never defined (a load that fails) is unwound when its coroutine is
//! dropped: the allocation is freed and its weak handles stay dead. Stacks
//! are reused from one object to the next. Only graphs that need this pay
//! for it; every other object is built in place as before.

use std::any::Any;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::{Error, Result};
use crate::load::{ObjSlot, SharedPtr};
use crate::{Loader, Stateify};

/// A coroutine runs only `new_cyclic` and the suspension (and, when it is
/// dropped unfinished, the unwinding out of them).
const COROUTINE_STACK: usize = 64 << 10;

/// Stacks kept for reuse by one load.
const KEEP_STACKS: usize = 64;

/// Coroutine stacks of one load, reused as objects finish.
#[derive(Default)]
pub(crate) struct Stacks(Vec<DefaultStack>);

impl Stacks {
    fn take(&mut self) -> Result<DefaultStack> {
        match self.0.pop() {
            Some(s) => Ok(s),
            None => DefaultStack::new(COROUTINE_STACK).map_err(|e| {
                Error::custom(format!(
                    "cannot allocate a stack for an object announced before its value: {e}"
                ))
            }),
        }
    }

    fn give_back(&mut self, s: DefaultStack) {
        if self.0.len() < KEEP_STACKS {
            self.0.push(s);
        }
    }
}

/// An announced object of pointer type `P`, suspended inside its
/// `new_cyclic` until its value is passed in.
pub(crate) struct Suspended<P: SharedPtr> {
    co: Coroutine<Option<P::Target>, P::Weak, P, DefaultStack>,
}

/// An announced object of any type, as the object table holds it.
#[doc(hidden)]
pub trait PendingObject {
    /// Loads its value (the stream is at it) and finishes it.
    fn finish_erased(self: Box<Self>, l: &mut Loader) -> Result<ObjSlot>;
    /// For a typed `DEF`: back to the concrete type.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<P: SharedPtr> Suspended<P>
where
    P::Target: Stateify,
{
    /// Starts building an object: returns it suspended, with a weak handle
    /// that does not upgrade until it is finished.
    pub fn start(stacks: &mut Stacks) -> Result<(Self, P::Weak)> {
        let stack = stacks.take()?;
        let mut co = Coroutine::with_stack(stack, |y: &Yielder<Option<P::Target>, P::Weak>, _| {
            P::new_cyclic(|weak| loop {
                // Resumed with the value once it is loaded; a coroutine
                // dropped before that unwinds from here.
                if let Some(value) = y.suspend(weak.clone()) {
                    break value;
                }
            })
        });
        match co.resume(None) {
            CoroutineResult::Yield(weak) => Ok((Suspended { co }, weak)),
            // The closure suspends before it can return.
            CoroutineResult::Return(_) => Err(Error::custom(
                "internal: an announced object finished before its value",
            )),
        }
    }

    /// Finishes the object with its loaded value.
    pub fn finish(mut self, value: P::Target, stacks: &mut Stacks) -> Result<P> {
        match self.co.resume(Some(value)) {
            CoroutineResult::Return(p) => {
                stacks.give_back(self.co.into_stack());
                Ok(p)
            }
            CoroutineResult::Yield(_) => Err(Error::custom(
                "internal: an announced object suspended twice",
            )),
        }
    }
}

impl<P: SharedPtr> PendingObject for Suspended<P>
where
    P::Target: Stateify,
{
    fn finish_erased(self: Box<Self>, l: &mut Loader) -> Result<ObjSlot> {
        let value = l.load_object_value::<P>()?;
        l.finish_suspended(*self, value).map(|p| p.erase())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}
