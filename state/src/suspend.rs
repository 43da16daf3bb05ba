//! Suspended construction: objects announced by a forward weak reference.
//!
//! A loaded `Rc`/`Arc` that weak references lead into is built with
//! `new_cyclic`, whose weak handle exists (and does not upgrade) only while
//! its closure runs. With one stack those closures nest, so objects finish
//! in the reverse order they start. Some graphs need another order: an
//! endpoint whose `Weak` points to the stack that owns it, met before that
//! stack (see ARCHITECTURE.md, "Construction order"). The saver then
//! announces the stack with `FWD` where the weak reference is, and writes
//! its value later (`DEF`).
//!
//! Here the announced object's `new_cyclic` runs on a stack of its own (a
//! [`corosensei`] coroutine): started at `FWD`, it suspends inside the
//! closure and hands out its weak handle; resumed at `DEF`, it loads the
//! value from the same loader and finishes. Objects announced and never
//! defined are unwound when the coroutine is dropped: the allocation is
//! freed and their weak handles stay dead. Only graphs that need it pay for
//! this; every other object is built in place as before.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::{Error, Result};
use crate::load::{ObjSlot, Sentinel, SharedPtr};
use crate::weakslot::ErasedWeak;
use crate::{Loader, Stateify};

/// The coroutine's own stack: it runs only `new_cyclic`, the suspension
/// and the switch to a heap-grown segment for the value's load.
const COROUTINE_STACK: usize = 64 << 10;

/// The first stack segment of a value's load (`stacker` adds more as the
/// load nests deeper, as on any other stack).
const VALUE_STACK: usize = 256 << 10;

/// The loader, passed into the coroutine at each resume. Its lifetimes are
/// erased: the coroutine uses it only during the resume that passed it.
type LoaderPtr = *mut Loader<'static, 'static>;

enum Outcome<P> {
    Built(P),
    Failed(Error),
}

/// An announced object of pointer type `P`, suspended inside its
/// `new_cyclic`.
pub(crate) struct Suspended<P: SharedPtr> {
    co: Coroutine<LoaderPtr, P::Weak, Outcome<P>, DefaultStack>,
    weak: ErasedWeak,
}

/// An announced object of any type, as the object table holds it.
#[doc(hidden)]
pub trait PendingObject {
    /// The weak handle that references to it get.
    fn weak(&self) -> &ErasedWeak;
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
    pub fn start() -> Result<(Self, P::Weak)> {
        let stack = DefaultStack::new(COROUTINE_STACK).map_err(|e| {
            Error::custom(format!(
                "cannot allocate a stack for an object announced before its value: {e}"
            ))
        })?;
        let mut co = Coroutine::with_stack(stack, |y: &Yielder<LoaderPtr, P::Weak>, _| {
            let mut failure = None;
            let built = catch_unwind(AssertUnwindSafe(|| {
                P::new_cyclic(|weak| {
                    let l = y.suspend(weak.clone());
                    // SAFETY: only `Suspended::finish` resumes the coroutine,
                    // passing the loader it was called with; that caller
                    // holds it mutably borrowed and does not touch it until
                    // the resume returns, so this is the only live
                    // reference. The erased lifetimes do not escape: `load`
                    // is generic over them and returns an owned value.
                    let l = unsafe { &mut *l };
                    match stacker::grow(VALUE_STACK, || l.load_object_value::<P>()) {
                        Ok(v) => v,
                        Err(e) => {
                            failure = Some(e);
                            // Leave new_cyclic without a value: the allocation
                            // is freed and the weak handles stay dead.
                            resume_unwind(Box::new(Sentinel))
                        }
                    }
                })
            }));
            match built {
                Ok(p) => Outcome::Built(p),
                Err(payload) if payload.is::<Sentinel>() => Outcome::Failed(
                    failure.unwrap_or_else(|| Error::custom("cyclic construction failed")),
                ),
                // A panic of a hook, or the forced unwind of a dropped
                // coroutine: it goes on to the resumer.
                Err(payload) => resume_unwind(payload),
            }
        });
        match co.resume(std::ptr::null_mut()) {
            CoroutineResult::Yield(weak) => {
                let erased = ErasedWeak::new::<P>(&weak);
                Ok((Suspended { co, weak: erased }, weak))
            }
            // The closure suspends before it reads anything.
            CoroutineResult::Return(_) => Err(Error::custom(
                "internal: an announced object finished before its value",
            )),
        }
    }

    /// Loads the value from `l` (at the value) and finishes the object.
    pub fn finish(mut self, l: &mut Loader) -> Result<P> {
        let ptr = (l as *mut Loader).cast::<Loader<'static, 'static>>();
        match self.co.resume(ptr) {
            CoroutineResult::Return(Outcome::Built(p)) => Ok(p),
            CoroutineResult::Return(Outcome::Failed(e)) => Err(e),
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
    fn weak(&self) -> &ErasedWeak {
        &self.weak
    }

    fn finish_erased(self: Box<Self>, l: &mut Loader) -> Result<ObjSlot> {
        self.finish(l).map(|p| p.erase())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}
